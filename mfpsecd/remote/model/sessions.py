"""Remote panel sessions under the device's control (SPEC R-1..R-4), as pure rules: the
life of one request from the access code to its end, what refuses one, what ends one,
and the guard against guessing codes. Times are the injected clock's monotonic seconds;
the service does the I/O, the records and the waiting.

A request starts on the device side (the remote-panel agent connects outwards and asks):
the daemon makes a one-time access code the panel shows, the remote side must present
it, then the person at the panel must approve; only then is the session active. It ends
by either side, by idling, by its maximum length, or when the panel becomes busy with a
person's own authentication.
"""

from __future__ import annotations

import enum
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field


class Phase(enum.Enum):
    CODE = "code"  # the code is on the panel; the remote side has not presented it yet
    CONSENT = "consent"  # the code was right; the person at the panel decides
    ACTIVE = "active"
    ENDED = "ended"


@dataclass(frozen=True)
class RemotePolicy:
    enabled: bool = False  # off until the administrator enables remote panel sessions
    code_length: int = 4  # 4-8 digits
    code_ttl_s: float = 300.0  # the code is void after this
    consent_ttl_s: float = 60.0  # the person at the panel must decide within this
    idle_s: float = 600.0  # no activity for this long ends the session
    max_s: float = 3600.0  # however active, it ends after this
    tries_per_code: int = 3  # wrong codes a request may have before it is void
    # Wrong codes from one remote identity, and from all together, within guard_window_s
    # before the identity (or everyone) is locked out for lockout_s.
    identity_failures: int = 5
    total_failures: int = 20
    guard_window_s: float = 900.0
    lockout_s: float = 900.0


def new_code(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


@dataclass
class Request:
    id: str
    remote: str  # the remote identity, as the agent names the operator or client
    code: str  # shown on the panel only; never in a record
    created: float
    phase: Phase = Phase.CODE
    wrong: int = 0
    decided: float = 0.0  # when the code was presented (consent) or approved (active)
    started: float = 0.0  # when the session became active
    last_activity: float = 0.0
    end_reason: str = ""
    ended_at: float = 0.0
    sensitive: bool = False  # the agent says a password or protected screen is shown

    def code_matches(self, code: str) -> bool:
        return hmac.compare_digest(self.code.encode(), code.encode())


def deadline_passed(r: Request, policy: RemotePolicy, now: float) -> str:
    """Why the request or session ends now by time ("" when it does not)."""
    if r.phase is Phase.CODE and now - r.created >= policy.code_ttl_s:
        return "the access code expired"
    if r.phase is Phase.CONSENT and now - r.decided >= policy.consent_ttl_s:
        return "nobody approved it at the panel in time"
    if r.phase is Phase.ACTIVE:
        if now - r.started >= policy.max_s:
            return "the maximum session length was reached"
        if now - r.last_activity >= policy.idle_s:
            return "idle"
    return ""


@dataclass(frozen=True)
class PanelState:
    """What the panel is doing, from the live sessions of the panel's uids."""

    user: str = ""  # a person is authenticated at the panel ("" when nobody is)
    administrator: bool = False  # in administrator mode


def refusal(panel: PanelState) -> str:
    """R-3: why a remote session may not start or go on now ("" when it may)."""
    if panel.administrator:
        return "the panel is in administrator mode"
    if panel.user:
        return "a user is logged in at the panel"
    return ""


@dataclass
class CodeGuard:
    """Wrong codes counted per remote identity and in total: past the limits within the
    window, the identity (or every identity) is locked out for a while, as wrong
    passwords lock an account (A-4)."""

    policy: RemotePolicy
    _by_identity: dict[str, deque[float]] = field(default_factory=dict)
    _total: deque[float] = field(default_factory=deque)
    _locked: dict[str, float] = field(default_factory=dict)  # identity ("*": all) -> until

    def locked(self, identity: str, now: float) -> float:
        """Seconds the identity stays locked out (0: it is not)."""
        left = max(self._locked.get(identity, 0.0), self._locked.get("*", 0.0)) - now
        return max(left, 0.0)

    def _trim(self, q: deque[float], now: float) -> None:
        while q and now - q[0] > self.policy.guard_window_s:
            q.popleft()

    def failure(self, identity: str, now: float) -> list[str]:
        """Count one wrong code. → what was locked out by it ("*" for everyone)."""
        q = self._by_identity.setdefault(identity, deque())
        q.append(now)
        self._total.append(now)
        self._trim(q, now)
        self._trim(self._total, now)
        locked = []
        if len(q) >= self.policy.identity_failures and not self.locked(identity, now):
            self._locked[identity] = now + self.policy.lockout_s
            q.clear()
            locked.append(identity)
        if len(self._total) >= self.policy.total_failures and self._locked.get("*", 0) <= now:
            self._locked["*"] = now + self.policy.lockout_s
            self._total.clear()
            locked.append("*")
        if len(self._by_identity) > 4096:  # bounded: the oldest identities are forgotten
            del self._by_identity[next(iter(self._by_identity))]
        return locked
