"""Identification and authentication (SPEC A-1..A-9): password and card logins with
lockout and flood throttling, sessions, re-authentication before what matters, a user's
change of their own password. The accounts (accounts.py), their passwords (passwords.py)
and second factors (second_factor.py) are held by this service and share its per-account
critical section (account_guard.py).

Lockout (A-4) is decided per account under one lock per account: attempts on the same
account run one after another, so N concurrent wrong passwords count exactly N failures
and lock once; attempts after the lock are answered without looking at the password (the
answer says nothing about whether it was right). The counters are written to the state
store (synchronous=FULL) before a failure is answered, so neither a daemon restart nor a
power cut forgets them. Unknown user names get the same treatment from a bounded
in-memory table, and the same Argon2id work, so answers do not tell which names exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NoReturn

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.account_guard import AccountGuard
from mfpsecd.auth.accounts import USER_NAME, Accounts
from mfpsecd.auth.model import card_certificate
from mfpsecd.auth.model.password_policy import PasswordPolicy, rules_digest, violations
from mfpsecd.auth.model.policy import AuthPolicy, after_failure, lock_remaining
from mfpsecd.auth.model.throttle import Action, Detection, Throttle, ThrottleLimits
from mfpsecd.auth.password_hasher import PasswordHasher
from mfpsecd.auth.passwords import Passwords
from mfpsecd.auth.ports import CardReader
from mfpsecd.auth.posture import admin_password
from mfpsecd.auth.second_factor import TOTP_ROLES, SecondFactor, TotpEnrollment
from mfpsecd.auth.sessions import Seat, Session, SessionTable
from mfpsecd.auth.user_store import UserRow, UserStore
from mfpsecd.base.access import Role
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.posture import PostureItem
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.secrets import SecretStore

log = structlog.get_logger("mfpsecd.auth")

# Failed logins that count towards a source's password-attack window.
_ATTACK_SIGNS = frozenset(
    {
        ErrorCode.AUTHENTICATION_FAILED,
        ErrorCode.ACCOUNT_LOCKED,
        ErrorCode.CERTIFICATE_REJECTED,
        ErrorCode.CARD_UNUSABLE,
    }
)

MAX_PHANTOMS = 4096  # unknown names whose failures are tracked (oldest forgotten first)
DAY_S = 86400.0


@dataclass(frozen=True)
class LoginResult:
    token: str
    session: Session


class AuthService:
    def __init__(
        self,
        users: UserStore,
        secrets: SecretStore,
        hasher: PasswordHasher,
        *,
        sessions: SessionTable,
        auditor: Auditor,
        clock: Clock,
        throttle: Throttle | None = None,
        max_delayed: int = 16,
        card: CardReader | None = None,
        trust_anchors: tuple[x509.Certificate, ...] = (),
    ) -> None:
        self._users = users
        self._secrets = secrets
        self._hasher = hasher
        self.sessions = sessions
        self._auditor = auditor
        self._clock = clock
        self.policy = AuthPolicy()
        self._guard = AccountGuard(users, auditor)
        self._passwords = Passwords(users, secrets, hasher, clock, lambda: self.policy.password)
        self.accounts = Accounts(
            users, secrets, self._passwords, self._guard, sessions=sessions, clock=clock
        )
        self.totp = SecondFactor(users, secrets, self._guard, sessions, clock)
        # Unknown names (by SHA-256) → (failures, locked until), persisted (UserStore).
        self._phantoms: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        self.throttle = throttle or Throttle(ThrottleLimits())
        self._max_delayed = max_delayed
        self._card = card
        self._anchors = list(trust_anchors)
        self._delayed = 0
        self._ending: set[asyncio.Task[None]] = set()
        sessions.on_end = self._session_ended

    async def start(self) -> None:
        self.policy = await self._users.load_policy()
        self.sessions.policy = self.policy.session
        await self.accounts.start()
        for key, failures, until in await self._users.phantoms():
            self._phantoms[key] = (failures, until)

    def _now(self) -> float:
        return self._clock.now().timestamp()

    # ---------------------------------------------------------------- logging in

    def source_of(self, seat: Seat, address: str) -> str:
        """The throttling source (A-5, A-6): the remote address a front-end named (its
        prefix when spraying), else the panel, else the local uid."""
        if address:
            return self.throttle.source_of(address)
        if seat.peer_class is PeerClass.PANEL:
            return "panel"
        return f"uid:{seat.peer.uid}"

    async def _admit(self, source: str, subject: Subject) -> None:
        """Count the request; delay it (never blocking others: this task sleeps) or refuse
        it when its source, or everyone together, sends too many."""
        verdict, found = self.throttle.request(source, self._clock.monotonic())
        await self._report(found, subject)
        if verdict.action is Action.REFUSE:
            raise MfpsecError(ErrorCode.THROTTLED, retry_after_s=round(verdict.seconds, 1))
        if verdict.action is Action.DELAY:
            if self._delayed >= self._max_delayed:  # the tarpit is full: bounded memory
                raise MfpsecError(ErrorCode.THROTTLED, retry_after_s=round(verdict.seconds, 1))
            self._delayed += 1
            try:
                await self._clock.sleep(verdict.seconds)
            finally:
                self._delayed -= 1

    async def report_suppressed(self) -> None:
        """Supervised task: the count of suppressed detections, once each window ends,
        and the sessions that timed out meanwhile (their ends are recorded)."""
        while True:
            await self._clock.sleep(self.throttle.limits.request_window_s)
            self.sessions.expire()
            await self._report(self.throttle.flush(self._clock.monotonic()), DAEMON)

    def _session_ended(self, session: Session, why: str) -> None:
        """A session ended, however (FAU_GEN.1): a service engineer's as
        maintenance.session; anyone else's that the daemon ended (idle or maximum time,
        evicted, ended by the administrator: FTA_SSL.3) as auth.logout with the reason. A
        logout by its user is recorded by logout() itself. Called from the session
        table's callback, which cannot wait."""
        if session.role is not Role.SERVICE and why == "logout":
            return
        task = asyncio.get_running_loop().create_task(self._record_end(session, why))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _record_end(self, session: Session, why: str) -> None:
        who = Subject(origin="daemon", user=session.user, role=session.role.value, uid=session.uid)
        service = session.role is Role.SERVICE
        try:
            await self._auditor.record(
                EventType.MAINTENANCE_SESSION if service else EventType.AUTH_LOGOUT,
                Outcome.SUCCESS,
                who,
                session.user,
                **({"phase": "end"} if service else {}),
                session=session.id,
                reason=why,
                duration_s=round(self._clock.monotonic() - session.created, 1),
            )
        except (MfpsecError, RuntimeError) as exc:  # a full log refuses; stopping
            log.error("session_end_unrecorded", session=session.id, error=str(exc))

    async def _report(self, found: list[Detection], subject: Subject) -> None:
        for d in found:
            log.warning(
                "auth_attack_detected",
                kind=d.kind.value,
                source=d.source,
                count=d.count,
                suppressed=d.suppressed,
            )
            await self._auditor.record(
                EventType.AUTH_FLOOD,
                Outcome.SUCCESS,
                subject,
                d.source,
                kind=d.kind.value,
                count=d.count,
                window_s=d.window_s,
                suppressed=d.suppressed,
            )

    async def login(
        self,
        name: str,
        password: SecretBytes,
        otp: str,
        seat: Seat,
        subject: Subject,
        *,
        source: str = "",
    ) -> LoginResult:
        """A password (+ TOTP) login; the session is attached to the seat."""
        source = source or self.source_of(seat, subject.address)
        await self._admit(source, subject)
        try:
            return await self._login(name, password, otp, seat, subject)
        except MfpsecError as exc:
            await self._count_failure(exc, source, subject)
            raise

    async def _count_failure(self, exc: MfpsecError, source: str, subject: Subject) -> None:
        if exc.code in _ATTACK_SIGNS:
            await self._report(self.throttle.failure(source, self._clock.monotonic()), subject)

    async def login_card(
        self, pin: SecretBytes, seat: Seat, subject: Subject, *, source: str = ""
    ) -> LoginResult:
        """A-8: the card's certificate must be acceptable and bound to a user, and the card
        must sign a fresh challenge after the PIN. A wrong PIN, or a signature that does
        not verify, counts towards the user's lockout."""
        card = self._card
        if card is None:
            raise MfpsecError(
                ErrorCode.CARD_UNUSABLE, reason="card login is not configured (auth.card.module)"
            )
        source = source or self.source_of(seat, subject.address)
        await self._admit(source, subject)
        try:
            der = await asyncio.to_thread(card.certificate)
            fp = card_certificate.fingerprint(der)
            try:
                cert = card_certificate.check(der, self._anchors, [], self._clock.now())
                user = await self._users.by_card(fp)
                if user is None:
                    raise MfpsecError(
                        ErrorCode.CERTIFICATE_REJECTED, reason="the certificate is bound to no user"
                    )
            except MfpsecError as exc:
                await self._auditor.record(
                    EventType.AUTH_LOGIN,
                    Outcome.FAILURE,
                    subject,
                    f"card {fp[:16]}",
                    method="card",
                    reason=str(exc.params.get("reason", "")),
                )
                raise
            async with self._guard.held(user.name):
                user = await self._guard.require(user.name)
                await self._refuse_if_locked(user, subject, "card")
                challenge = os.urandom(32)
                try:
                    signature = await asyncio.to_thread(card.sign, pin, challenge)
                except MfpsecError as exc:
                    if exc.code is ErrorCode.AUTHENTICATION_FAILED:
                        await self._failed(user, subject, "card", "wrong PIN")
                    await self._guard.record(
                        EventType.AUTH_LOGIN,
                        Outcome.FAILURE,
                        subject,
                        user.name,
                        method="card",
                        reason=str(exc.params.get("reason", "")),
                    )
                    raise
                if not card_certificate.signed_by(cert, signature, challenge):
                    await self._failed(
                        user,
                        subject,
                        "card",
                        "challenge not signed by the certificate's key",
                        error=MfpsecError(
                            ErrorCode.CARD_UNUSABLE,
                            reason="the card did not prove possession of the certificate's key",
                        ),
                    )
                return await self._open(user, seat, subject, "card", "")
        except MfpsecError as exc:
            await self._count_failure(exc, source, subject)
            raise

    async def bind_card(self, name: str, certificate_pem: str) -> str:
        """Bind a card's certificate to a user (it must be acceptable now) → its
        fingerprint; an empty certificate unbinds."""
        async with self._guard.held(name):
            await self._guard.require(name)
            if not certificate_pem:
                await self._users.set_card(name, None)
                return ""
            try:
                der = x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(
                    serialization.Encoding.DER
                )
            except ValueError:
                raise MfpsecError(
                    ErrorCode.CERTIFICATE_REJECTED, reason="not a PEM certificate"
                ) from None
            card_certificate.check(der, self._anchors, [], self._clock.now())
            fp = card_certificate.fingerprint(der)
            if not await self._users.set_card(name, fp):
                raise MfpsecError(
                    ErrorCode.CERTIFICATE_REJECTED, reason="bound to another user already"
                )
            return fp

    async def _login(
        self, name: str, password: SecretBytes, otp: str, seat: Seat, subject: Subject
    ) -> LoginResult:
        async with self._guard.held(name):
            user = await self._users.get(name) if USER_NAME.match(name) else None
            if user is None:
                await self._phantom_attempt(name, password, subject)
            await self._refuse_if_locked(user, subject, "password")
            if user.totp_enabled and not otp:
                # Ask for the code before the password is checked: a right and a wrong
                # password get the same answer until both are given.
                raise MfpsecError(ErrorCode.SECOND_FACTOR_REQUIRED)
            if not await self._passwords.verify(user.name, password):
                await self._failed(user, subject, "password", "wrong password")
            now = self._now()
            policy = self.policy.password
            if user.temporary and now - user.password_set_at > policy.temporary_days * DAY_S:
                await self._guard.record(
                    EventType.AUTH_LOGIN,
                    Outcome.FAILURE,
                    subject,
                    name,
                    method="password",
                    reason="temporary password expired",
                )
                raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED)
            if user.totp_enabled:
                await self._second_factor(user, otp, subject)
            met = not violations(password.view(), user.name, policy)
            await self._note_rules(user, policy, met)
            must_change = self._must_change(user, met, policy, now)
            return await self._open(user, seat, subject, "password", must_change)

    async def _note_rules(self, user: UserRow, policy: PasswordPolicy, met: bool) -> None:
        """Whether the password meets the rules in force, kept for the posture (A-3)."""
        rules = rules_digest(policy)
        if (user.rules_checked, user.rules_met) != (rules, met):
            await self._users.rules_checked(user.name, rules, met)

    @staticmethod
    def _must_change(user: UserRow, met: bool, policy: PasswordPolicy, now: float) -> str:
        if user.temporary:
            return "temporary"
        if policy.expiry_days and now - user.password_set_at > policy.expiry_days * DAY_S:
            return "expired"
        if not met:
            return "policy"  # it breaks the current rules (e.g. made stricter since)
        return ""

    async def _open(
        self, user: UserRow, seat: Seat, subject: Subject, method: str, must_change: str
    ) -> LoginResult:
        await self._users.logged_in(user.name, rfc3339(self._clock))
        token, session = self.sessions.open(user.name, user.role, seat.peer.uid, must_change)
        seat.attach(session)
        who = Subject(
            subject.origin, user.name, user.role.value, subject.uid, subject.pid, subject.address
        )
        details: dict[str, str | int | float | bool] = {"method": method, "session": session.id}
        if must_change:
            details["must_change"] = must_change
        await self._guard.record(EventType.AUTH_LOGIN, Outcome.SUCCESS, who, user.name, **details)
        if user.role is Role.SERVICE:  # FAU_GEN.1: the start of a maintenance session
            await self._guard.record(
                EventType.MAINTENANCE_SESSION,
                Outcome.SUCCESS,
                who,
                user.name,
                phase="start",
                session=session.id,
                method=method,
            )
        return LoginResult(token, session)

    async def _refuse_if_locked(self, user: UserRow, subject: Subject, method: str) -> None:
        remaining = lock_remaining(user.locked_until, self._now())
        if remaining > 0:
            await self._guard.record(
                EventType.AUTH_LOGIN,
                Outcome.FAILURE,
                subject,
                user.name,
                method=method,
                reason="account locked",
            )
            raise MfpsecError(ErrorCode.ACCOUNT_LOCKED, retry_after_s=math.ceil(remaining))

    async def _failed(
        self,
        user: UserRow,
        subject: Subject,
        method: str,
        reason: str,
        *,
        error: MfpsecError | None = None,
    ) -> None:
        """Count a failure (durably), lock at the limit, and refuse (with error, else
        AuthenticationFailed)."""
        failures, until = after_failure(
            user.failures, user.locked_until, self._now(), self.policy.lockout
        )
        await self._users.set_lockout(user.name, failures, until)
        await self._guard.record(
            EventType.AUTH_LOGIN,
            Outcome.FAILURE,
            subject,
            user.name,
            method=method,
            reason=reason,
            failures=failures,
        )
        if until:
            ended = self.sessions.end_user(user.name)
            await self._guard.record(
                EventType.AUTH_LOCKOUT,
                Outcome.SUCCESS,
                subject,
                user.name,
                failures=failures,
                minutes=self.policy.lockout.lock_minutes,
                sessions_ended=ended,
            )
            log.warning("auth_lockout", user=user.name, failures=failures)
        raise error or MfpsecError(ErrorCode.AUTHENTICATION_FAILED)

    async def _phantom_attempt(
        self, name: str, password: SecretBytes, subject: Subject
    ) -> NoReturn:
        """An unknown name: the same work, counting and locking as for a real account."""
        key = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
        failures, until = self._phantoms.get(key, (0, 0.0))
        remaining = lock_remaining(until, self._now())
        await self._guard.record(
            EventType.AUTH_LOGIN,
            Outcome.FAILURE,
            subject,
            name[:64],
            method="password",
            reason="unknown user",
        )
        if remaining > 0:
            raise MfpsecError(ErrorCode.ACCOUNT_LOCKED, retry_after_s=math.ceil(remaining))
        await self._passwords.burn(password)
        failures, until = after_failure(failures, until, self._now(), self.policy.lockout)
        self._phantoms[key] = (failures, until)
        self._phantoms.move_to_end(key)
        while len(self._phantoms) > MAX_PHANTOMS:
            self._phantoms.popitem(last=False)
        # Kept across restarts, as a real account's count is: otherwise a power cycle
        # tells a locked real name (AccountLocked) from an unknown one.
        await self._users.save_phantom(key, failures, until, MAX_PHANTOMS)
        raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED)

    async def _second_factor(self, user: UserRow, otp: str, subject: Subject) -> None:
        if not otp:
            raise MfpsecError(ErrorCode.SECOND_FACTOR_REQUIRED)
        why = await self.totp.refused(user, otp)
        if why:
            await self._failed(user, subject, "totp", why)

    def resume(self, token: str, seat: Seat) -> Session:
        session = self.sessions.find(token, seat.peer.uid)
        if session is None:
            raise MfpsecError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                reason="no such session (ended, timed out or another user's)",
            )
        seat.attach(session)
        return session

    async def logout(self, seat: Seat, subject: Subject) -> None:
        session = seat.detach()
        if session is None:
            return
        self.sessions.end(session)
        await self._auditor.record(
            EventType.AUTH_LOGOUT, Outcome.SUCCESS, subject, session.user, session=session.id
        )

    # ---------------------------------------------------------------- passwords

    async def change_own_password(
        self, seat: Seat, current: SecretBytes, new: SecretBytes, subject: Subject
    ) -> None:
        """A-7: the current password again first (it counts towards the lockout)."""
        async with self._reauthenticated(seat, current, subject) as session:
            await self._passwords.replace(session.user, new, temporary=False)
        session.must_change = ""
        seat.refresh()

    @asynccontextmanager
    async def _reauthenticated(
        self, seat: Seat, password: SecretBytes, subject: Subject
    ) -> AsyncIterator[Session]:
        """The session's user types their password again before something that matters;
        a wrong one counts towards the lockout like a failed login. The body runs inside
        the account's critical section."""
        session = seat.session
        if session is None or not self.sessions.alive(session):
            raise MfpsecError(ErrorCode.AUTHENTICATION_REQUIRED, reason="log in first")
        async with self._guard.held(session.user):
            user = await self._guard.require(session.user)
            await self._refuse_if_locked(user, subject, "reauthentication")
            if not await self._passwords.verify(user.name, password):
                await self._failed(user, subject, "reauthentication", "wrong password")
            if user.failures:
                # Any successful authentication of the account ends the run of failures.
                await self._users.set_lockout(user.name, 0, 0.0)
            yield session

    async def reauthenticate(self, seat: Seat, password: SecretBytes, subject: Subject) -> Session:
        """Re-authentication before a destructive operation (a sanitization, a purge)."""
        async with self._reauthenticated(seat, password, subject) as session:
            return session

    # ---------------------------------------------------------------- settings

    async def posture(self) -> list[PostureItem]:
        """The administrator password's S-1 item (A-3)."""
        return [admin_password(await self._users.all(), self.policy, self._now())]

    @property
    def clock(self) -> Clock:
        return self._clock

    async def set_policy(self, policy: AuthPolicy) -> None:
        await self._users.save_policy(policy)
        self.policy = policy
        self.sessions.policy = policy.session

    # ---------------------------------------------------------------- TOTP

    async def enroll_totp(
        self, seat: Seat, password: SecretBytes, subject: Subject
    ) -> TotpEnrollment:
        """A new seed (re-authentication first); active once a code from it is confirmed."""
        if seat.session is not None and seat.session.role not in TOTP_ROLES:
            raise MfpsecError(ErrorCode.PERMISSION_DENIED)
        async with self._reauthenticated(seat, password, subject) as session:
            return await self.totp.enroll(session.user)
