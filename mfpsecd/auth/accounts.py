"""The administrator's management of local accounts (A-1, A-3, A-4): the first
administrator set once on a device that ships without one, accounts added and removed
(never the last administrator), passwords set by the administrator (temporary by
default), lockouts lifted. Each change runs in the account's critical section."""

from __future__ import annotations

import asyncio
import re

from mfpsecd.auth.account_guard import AccountGuard
from mfpsecd.auth.model.policy import lock_remaining
from mfpsecd.auth.passwords import Passwords
from mfpsecd.auth.sessions import SessionTable
from mfpsecd.auth.user_store import UserRow, UserStore, verifier_name
from mfpsecd.base.access import Role
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.secrets import SecretStore

USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")


def totp_seed_name(user: str) -> str:
    return f"auth.totp.{user}"


class Accounts:
    """The local accounts, as the administrator manages them."""

    def __init__(
        self,
        users: UserStore,
        secrets: SecretStore,
        passwords: Passwords,
        guard: AccountGuard,
        *,
        sessions: SessionTable,
        clock: Clock,
    ) -> None:
        self._users = users
        self._secrets = secrets
        self._passwords = passwords
        self._guard = guard
        self._sessions = sessions
        self._clock = clock
        self._setup = asyncio.Lock()
        self.administrator_exists = False

    async def start(self) -> None:
        self.administrator_exists = await self._users.count_role(Role.ADMINISTRATOR) > 0

    async def initialize(self, name: str, password: SecretBytes) -> None:
        """First start (A-3): the device ships without any usable administrator password;
        the first one is set here, once."""
        async with self._setup:
            if await self._users.count_role(Role.ADMINISTRATOR):
                raise MfpsecError(ErrorCode.ALREADY_INITIALIZED)
            await self.add_user(name, Role.ADMINISTRATOR, password, temporary=False)

    async def add_user(self, name: str, role: Role, password: SecretBytes, temporary: bool) -> None:
        if not USER_NAME.match(name):
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="user")
        self._passwords.check(name, password)
        async with self._guard.held(name):
            if await self._users.get(name) is not None:
                raise MfpsecError(ErrorCode.USER_EXISTS, user=name)
            await self._passwords.first(name, password)
            now = self._clock.now().timestamp()
            rules = self._passwords.rules()
            if not await self._users.insert(
                name, role, rfc3339(self._clock), now, temporary, rules=rules
            ):
                raise MfpsecError(ErrorCode.USER_EXISTS, user=name)
        if role is Role.ADMINISTRATOR:
            self.administrator_exists = True

    async def remove_user(self, name: str) -> None:
        async with self._guard.held(name):
            user = await self._guard.require(name)
            if (
                user.role is Role.ADMINISTRATOR
                and await self._users.count_role(Role.ADMINISTRATOR) <= 1
            ):
                raise MfpsecError(ErrorCode.LAST_ADMINISTRATOR, user=name)
            self._sessions.end_user(name)
            await self._users.delete(name)
            for secret in (verifier_name(name), totp_seed_name(name)):
                try:
                    await self._secrets.delete(secret)  # overwritten, then deleted
                except MfpsecError as exc:
                    if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                        raise

    async def set_password(self, name: str, new: SecretBytes, temporary: bool) -> None:
        """The administrator sets someone's password: temporary by default, so the user
        must choose their own at the next login; their sessions end."""
        async with self._guard.held(name):
            await self._guard.require(name)
            await self._passwords.replace(name, new, temporary)
        self._sessions.end_user(name)

    async def unlock(self, name: str) -> int:
        """Administrator unlock (A-4) → the failures that were counted."""
        async with self._guard.held(name):
            user = await self._guard.require(name)
            await self._users.set_lockout(name, 0, 0.0)
            return user.failures

    async def user(self, name: str) -> UserRow:
        return await self._guard.require(name)

    async def list_users(self) -> list[UserRow]:
        return await self._users.all()

    def locked(self, user: UserRow) -> float:
        """Seconds until the account's lockout ends (0: not locked)."""
        return lock_remaining(user.locked_until, self._clock.now().timestamp())
