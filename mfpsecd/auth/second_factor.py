"""The second factor (A-9): a TOTP seed per administrator or service account, sealed in
the secret store, active once a code from it is confirmed; each time step is accepted
once. The administrator removes it when a phone is lost."""

from __future__ import annotations

from dataclasses import dataclass

from mfpsecd.auth.account_guard import AccountGuard
from mfpsecd.auth.accounts import totp_seed_name
from mfpsecd.auth.model import totp
from mfpsecd.auth.sessions import Seat, SessionTable
from mfpsecd.auth.user_store import UserRow, UserStore
from mfpsecd.base.access import Role
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.secrets import SecretKind, SecretStore

TOTP_ROLES = frozenset({Role.ADMINISTRATOR, Role.SERVICE})
TOTP_ISSUER = "mfpsecd"


@dataclass(frozen=True)
class TotpEnrollment:
    uri: str
    secret_base32: str


class SecondFactor:
    """Enrolment, confirmation, checking and removal of accounts' TOTP seeds."""

    def __init__(
        self,
        users: UserStore,
        secrets: SecretStore,
        guard: AccountGuard,
        sessions: SessionTable,
        clock: Clock,
    ) -> None:
        self._users = users
        self._secrets = secrets
        self._guard = guard
        self._sessions = sessions
        self._clock = clock

    async def enroll(self, user: str) -> TotpEnrollment:
        """A new seed, inactive until confirmed (the caller re-authenticated the user)."""
        with SecretBytes.random(totp.SEED_BYTES) as seed:
            await self._secrets.put(totp_seed_name(user), SecretKind.TOTP_SEED, seed)
            await self._users.set_totp(user, False, -1)
            uri = totp.provisioning_uri(seed.view(), TOTP_ISSUER, user)
        secret = uri.split("secret=", 1)[1].split("&", 1)[0]
        return TotpEnrollment(uri, secret)

    async def confirm(self, seat: Seat, code: str) -> None:
        session = seat.session
        if session is None or not self._sessions.alive(session):
            raise MfpsecError(ErrorCode.AUTHENTICATION_REQUIRED, reason="log in first")
        async with self._guard.held(session.user):
            try:
                seed = await self._secrets.get(totp_seed_name(session.user))
            except MfpsecError as exc:
                if exc.code is ErrorCode.SECRET_NOT_FOUND:
                    raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="code") from None
                raise
            with seed:
                step = totp.matching_step(seed.view(), code, self._clock.now().timestamp())
            if step is None:
                raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED)
            await self._users.set_totp(session.user, True, step)

    async def refused(self, user: UserRow, code: str) -> str:
        """Why the code does not let the user in ("" when it does; its step is then
        spent). Called inside the account's critical section."""
        with await self._secrets.get(totp_seed_name(user.name)) as seed:
            step = totp.matching_step(seed.view(), code, self._clock.now().timestamp())
        if step is None:
            return "wrong one-time code"
        if not await self._users.use_totp_step(user.name, step):
            return "one-time code used before"
        return ""

    async def reset(self, name: str) -> None:
        """The administrator removes a user's second factor (a lost phone)."""
        async with self._guard.held(name):
            await self._guard.require(name)
            await self._users.set_totp(name, False, -1)
            try:
                await self._secrets.delete(totp_seed_name(name))
            except MfpsecError as exc:
                if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                    raise
