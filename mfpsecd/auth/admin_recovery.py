"""Recovering an administrator when none can log in, with someone at the device.

Root may not manage accounts without an administrator's session (core.access): else uid 0
could make itself an administrator and lift what only an administrator lifts. When every
administrator's password is lost, root asks for a recovery; the daemon makes a one-time
code that only the operation panel is given (the panel's PRESENCE privilege), and root
completes the recovery with that code, which a person reads at the panel. So recovery
needs uid 0 *and* someone in front of the device, and leaves an audit trail and an alert.

One request waits at a time (a newer one replaces it); it expires after TTL_S, is bound
to the uid that asked, and ends after MAX_TRIES wrong codes.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from mfpsecd.auth.service import AuthService
from mfpsecd.auth.user_store import UserRow
from mfpsecd.base.access import Role
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes

TTL_S = 300.0
MAX_TRIES = 3
CODE_DIGITS = 8


@dataclass
class RecoveryTicket:
    id: str
    user: str
    uid: int
    code: str
    expires: float  # monotonic
    tries: int = 0


class AdminRecovery:
    def __init__(self, auth: AuthService, clock: Clock) -> None:
        self._auth = auth
        self._clock = clock
        self._ticket: RecoveryTicket | None = None

    def remaining(self, ticket: RecoveryTicket) -> float:
        return max(0.0, ticket.expires - self._clock.monotonic())

    async def request(self, user: str, uid: int) -> RecoveryTicket:
        """A new request (the one waiting, if any, ends). The account must be an
        administrator's or not exist: recovery never turns another account into one."""
        await self._administrator_or_none(user)
        code = "".join(str(secrets.randbelow(10)) for _ in range(CODE_DIGITS))
        self._ticket = RecoveryTicket(
            secrets.token_hex(8), user, uid, code, self._clock.monotonic() + TTL_S
        )
        return self._ticket

    async def _administrator_or_none(self, user: str) -> UserRow | None:
        try:
            existing = await self._auth.accounts.user(user)
        except MfpsecError as exc:
            if exc.code is ErrorCode.USER_NOT_FOUND:
                return None
            raise
        if existing.role is not Role.ADMINISTRATOR:
            raise MfpsecError(ErrorCode.USER_EXISTS, user=user)
        return existing

    def pending(self) -> RecoveryTicket | None:
        t = self._ticket
        if t is not None and not self.remaining(t):
            self._ticket = t = None
        return t

    async def complete(self, request: str, code: str, uid: int, password: SecretBytes) -> UserRow:
        t = self.pending()
        if t is None or t.id != request or t.uid != uid:
            raise MfpsecError(
                ErrorCode.RECOVERY_NOT_PENDING, reason=f"no recovery {request} waits for uid {uid}"
            )
        if not hmac.compare_digest(code.encode(), t.code.encode()):
            t.tries += 1
            if t.tries >= MAX_TRIES:
                self._ticket = None
            raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED)
        try:
            if await self._administrator_or_none(t.user) is None:
                await self._auth.accounts.add_user(
                    t.user, Role.ADMINISTRATOR, password, temporary=True
                )
            else:
                await self._auth.accounts.set_password(t.user, password, temporary=True)
                await self._auth.accounts.unlock(t.user)
        except MfpsecError as exc:
            if exc.code is not ErrorCode.PASSWORD_REJECTED:
                self._ticket = None  # a password that breaks the policy may be given again
            raise
        self._ticket = None
        return await self._auth.accounts.user(t.user)
