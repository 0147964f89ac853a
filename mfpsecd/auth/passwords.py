"""Passwords (A-1..A-3, A-7): each account's verifier record (Argon2id, with the history
of earlier verifiers) sealed in the secret store; a new password checked against the
policy and the history before it replaces the current one."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from mfpsecd.auth.model.password_policy import (
    PasswordPolicy,
    Rule,
    Violation,
    rules_digest,
    violations,
)
from mfpsecd.auth.model.password_record import entries, new_record
from mfpsecd.auth.password_hasher import PasswordHasher
from mfpsecd.auth.user_store import UserStore, verifier_name
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.secrets import SecretKind, SecretStore

log = structlog.get_logger("mfpsecd.auth")


class Passwords:
    """Verifies, sets and replaces accounts' passwords under the current policy."""

    def __init__(
        self,
        users: UserStore,
        secrets: SecretStore,
        hasher: PasswordHasher,
        clock: Clock,
        policy: Callable[[], PasswordPolicy],
    ) -> None:
        self._users = users
        self._secrets = secrets
        self._hasher = hasher
        self._clock = clock
        self._policy = policy

    async def verify(self, name: str, password: SecretBytes) -> bool:
        """Whether the password matches. An account whose verifier is gone (its record
        deleted, or the keys destroyed under a restored database) matches nothing, after
        the same work: to the caller it is a wrong password (no hint that the account
        exists); the audit log, and an administrator setting a new password, deal with it."""
        try:
            record = await self._secrets.get(verifier_name(name))
        except MfpsecError as exc:
            if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                raise
            log.error("auth_verifier_missing", user=name)
            await self._hasher.burn(password)
            return False
        with record:
            return await self._hasher.matches(password, entries(record.view())[0])

    async def burn(self, password: SecretBytes) -> None:
        """The work of a verification, for a name that has no account."""
        await self._hasher.burn(password)

    def check(self, name: str, password: SecretBytes) -> None:
        """Refuse a password the policy does not accept for this name."""
        broken = violations(password.view(), name, self._policy())
        if broken:
            reject(broken)

    async def first(self, name: str, password: SecretBytes) -> None:
        """A new account's first verifier (no history)."""
        salt, verifier = await self._hasher.new_verifier(password)
        with (
            verifier,
            SecretBytes(new_record(salt, self._hasher.cost, verifier.view(), None, 0)) as record,
        ):
            await self._secrets.put(verifier_name(name), SecretKind.PASSWORD, record)

    async def replace(self, name: str, new: SecretBytes, temporary: bool) -> None:
        """The account's password replaced: never the current one nor one of the last
        `history` (A-2)."""
        policy = self._policy()
        broken = violations(new.view(), name, policy)
        try:
            old = await self._secrets.get(verifier_name(name))
        except MfpsecError as exc:
            if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                raise
            old = SecretBytes(bytearray())  # the verifier is gone: a new one, no history
        with old:
            if not broken and len(old):
                for entry in entries(old.view())[: policy.history + 1]:
                    if await self._hasher.matches(new, entry):
                        broken.append(_reused(policy))
                        break
            if broken:
                reject(broken)
            salt, verifier = await self._hasher.new_verifier(new)
            previous = old.view() if len(old) else None
            with (
                verifier,
                SecretBytes(
                    new_record(salt, self._hasher.cost, verifier.view(), previous, policy.history)
                ) as record,
            ):
                await self._secrets.put(verifier_name(name), SecretKind.PASSWORD, record)
        await self._users.password_set(
            name, self._clock.now().timestamp(), temporary, rules_digest(policy)
        )

    def rules(self) -> str:
        """The digest of the content rules in force (see rules_digest)."""
        return rules_digest(self._policy())


def _reused(policy: PasswordPolicy) -> Violation:
    return Violation(Rule.REUSED, f"not the current password nor one of the last {policy.history}")


def reject(broken: list[Violation]) -> None:
    raise MfpsecError(
        ErrorCode.PASSWORD_REJECTED,
        rules=",".join(v.rule.value for v in broken),
        requirements="; ".join(v.requirement for v in broken),
    )
