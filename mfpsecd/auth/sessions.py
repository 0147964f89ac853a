"""Login sessions (SPEC A-7) and what each IPC connection may do (its seat).

A session is created by a successful login and named by a random 256-bit token that only
the client holds: the daemon keeps its SHA-256, so a memory dump of the table lets nobody
resume a session. A session is bound to the peer uid that logged in (another uid
presenting the token is refused exactly like a wrong token) and ends on logout, after the
administrator's idle time, after an absolute lifetime, or when the account changes
(removed, password reset, locked).

A seat is one connection's view: its peer, the privileges its peer class grants, and the
session attached to it (by Login on this connection, or Resume with the token on a new
one, as the CLI does for each command). Privileges beyond the peer class are checked on
every call against a live session, so an idle timeout takes effect on the next call.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from mfpsecd.auth.model.policy import SessionPolicy
from mfpsecd.base.access import Privilege, Role
from mfpsecd.base.admission import (
    PeerClass,
    PeerCredentials,
    privileges,
    role_table,
    session_privileges,
)
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError

TOKEN_BYTES = 32
MAX_SESSIONS = 1024
MAX_SESSIONS_PER_USER = 16


@dataclass(eq=False)
class Session:
    id: str  # public: the first 16 hex digits of the token's SHA-256, for the audit log
    user: str
    role: Role
    uid: int  # the peer it is bound to
    created: float  # monotonic
    last_used: float
    # Why the password must be changed before anything else ("" when it need not):
    # "temporary", "expired" or "policy" (it breaks the current rules, A-3).
    must_change: str = ""
    ended: bool = False


def _nothing_more(_: PeerClass) -> frozenset[Privilege]:
    return frozenset()


class SessionTable:
    def __init__(self, clock: Clock, policy: SessionPolicy) -> None:
        self._clock = clock
        self.policy = policy
        self._by_digest: OrderedDict[bytes, Session] = OrderedDict()
        # Told of every session that ends and why ("logout", "timeout", "evicted",
        # "ended by the administrator", "accounts erased"): the service engineer's
        # maintenance.session record.
        self.on_end: Callable[[Session, str], None] | None = None
        # What a peer class holds for a while beyond its own grants, without a session:
        # the fleet agent during an administrator's manage window (remote, R-5).
        self.granted_for_now: Callable[[PeerClass], frozenset[Privilege]] = _nothing_more

    def _ended(self, session: Session, why: str) -> None:
        session.ended = True
        if self.on_end is not None:
            self.on_end(session, why)

    # The server's Access policy (varlink.server): connections get a Seat, and what their
    # peer class does not grant needs a live session whose role does.
    def seat(self, peer: PeerCredentials, peer_class: PeerClass) -> Seat:
        return Seat(peer, peer_class)

    def authorize(self, seat: object, needed: Privilege) -> None:
        s = seat_of(seat)
        if needed in self.granted_for_now(s.peer_class):
            return
        s.check(needed, self)

    def __len__(self) -> int:
        return len(self._by_digest)

    def open(self, user: str, role: Role, uid: int, must_change: str) -> tuple[str, Session]:
        """A new session → (token for the client, session)."""
        self._expire()
        mine = [d for d, s in self._by_digest.items() if s.user == user]
        for digest in mine[: max(len(mine) - MAX_SESSIONS_PER_USER + 1, 0)]:
            self._ended(self._by_digest.pop(digest), "evicted")  # the user's oldest make room
        while len(self._by_digest) >= MAX_SESSIONS:
            self._ended(self._by_digest.popitem(last=False)[1], "evicted")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock.monotonic()
        session = Session(digest[:8].hex(), user, role, uid, now, now, must_change)
        self._by_digest[digest] = session
        return token, session

    def find(self, token: str, uid: int) -> Session | None:
        """The live session of that token, if it belongs to that uid."""
        session = self._by_digest.get(hashlib.sha256(token.encode()).digest())
        if session is None or session.uid != uid or not self.alive(session):
            return None
        return session

    def alive(self, session: Session) -> bool:
        """True, and marks the use, unless it ended or timed out (then it ends)."""
        if session.ended:
            return False
        now = self._clock.monotonic()
        if self._timed_out(session, now):
            self.end(session, "timeout")
            return False
        session.last_used = now
        return True

    def _timed_out(self, session: Session, now: float) -> bool:
        return (
            now - session.last_used > self.policy.idle_minutes * 60.0
            or now - session.created > self.policy.max_hours * 3600.0
        )

    def end(self, session: Session, why: str = "logout") -> None:
        if session.ended:
            return
        self._ended(session, why)
        for digest, s in self._by_digest.items():
            if s is session:
                del self._by_digest[digest]
                return

    def end_all(self) -> int:
        """End every session (the accounts were erased) → how many."""
        gone = list(self._by_digest.values())
        self._by_digest.clear()
        for s in gone:
            self._ended(s, "accounts erased")
        return len(gone)

    def end_user(self, user: str) -> int:
        """End every session of a user (removed, password reset, locked) → how many."""
        gone = [d for d, s in self._by_digest.items() if s.user == user]
        for digest in gone:
            self._ended(self._by_digest.pop(digest), "ended by the administrator")
        return len(gone)

    def of_uids(self, uids: frozenset[int]) -> list[Session]:
        """The live sessions of peers with these uids (the panel's: who is logged in at
        the panel), timed-out ones ended first."""
        self._expire()
        return [s for s in self._by_digest.values() if s.uid in uids]

    def end_uids(self, uids: frozenset[int], why: str) -> int:
        """End every session of peers with these uids → how many."""
        gone = [d for d, s in self._by_digest.items() if s.uid in uids]
        for digest in gone:
            self._ended(self._by_digest.pop(digest), why)
        return len(gone)

    def expire(self) -> None:
        """End what timed out (called now and then: an idle session's end is recorded
        close to when it happened, not when someone next looks)."""
        self._expire()

    def _expire(self) -> None:
        now = self._clock.monotonic()
        for session in list(self._by_digest.values()):
            if self._timed_out(session, now):  # looking is not using: no touch here
                self.end(session, "timeout")


@dataclass(eq=False)
class Seat:
    """One connection: who is on the other end, and the session attached to it."""

    peer: PeerCredentials
    peer_class: PeerClass
    base: frozenset[Privilege] = frozenset()  # what the peer class alone grants
    session: Session | None = None
    _grants: frozenset[Privilege] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        self.base = privileges(self.peer_class)
        self._grants = self.base

    @property
    def grants(self) -> frozenset[Privilege]:
        """Everything this connection may do now (the session's role included)."""
        return self._grants

    def attach(self, session: Session) -> None:
        if session.uid != self.peer.uid:
            raise MfpsecError(ErrorCode.AUTHENTICATION_REQUIRED, reason="no such session")
        self.session = session
        self.refresh()

    def detach(self) -> Session | None:
        session, self.session = self.session, None
        self.refresh()
        return session

    def refresh(self) -> None:
        """Recompute the grants (after a password change lifts must_change)."""
        s = self.session
        self._grants = (
            session_privileges(self.peer_class, s.role, bool(s.must_change))
            if s is not None
            else self.base
        )

    def check(self, needed: Privilege, sessions: SessionTable) -> None:
        """For a privilege the peer class does not grant: a live session whose role does."""
        if not any(needed in grants for _, grants in role_table()):
            raise MfpsecError(ErrorCode.PERMISSION_DENIED)  # no login would help
        s = self.session
        if s is None:
            raise MfpsecError(ErrorCode.AUTHENTICATION_REQUIRED, reason="log in first")
        if not sessions.alive(s):
            self.detach()
            raise MfpsecError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                reason="the session ended or timed out: log in again",
            )
        if needed in self._grants:
            return
        if s.must_change:
            raise MfpsecError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                reason=f"change the password first ({s.must_change})",
            )
        raise MfpsecError(ErrorCode.PERMISSION_DENIED)


def seat_of(seat: object) -> Seat:
    """A connection's seat as the sessions made it (the server hands it over as its
    Seat protocol)."""
    if not isinstance(seat, Seat):
        raise MfpsecError(ErrorCode.AUTHENTICATION_REQUIRED, reason="no sessions here")
    return seat
