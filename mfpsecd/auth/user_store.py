"""User accounts in the state store: role, password age, lockout counters, factor bindings.

The password verifiers themselves are not here: they are sealed in the secret store (K-1:
the administrator's and users' passwords are protected by the key chain) under
`auth.user.<name>`, so a copy of the database alone cannot be attacked offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from mfpsecd.auth.model.policy import AuthPolicy
from mfpsecd.base.access import Role
from mfpsecd.base.state import StateConnection, StateStore

_COLUMNS = (
    "name, role, created_at, password_set_at, temporary, failures, locked_until, "
    "last_login_at, card_fingerprint, totp_enabled, totp_last_step, rules_checked, rules_met"
)
_POLICY_KEY = "policy"


def verifier_name(user: str) -> str:
    return f"auth.user.{user}"


@dataclass(frozen=True)
class UserRow:
    name: str
    role: Role
    created_at: str
    password_set_at: float  # wall-clock epoch seconds
    temporary: bool
    failures: int
    locked_until: float  # epoch seconds; 0 when not locked
    last_login_at: str
    card_fingerprint: str
    totp_enabled: bool
    totp_last_step: int
    # The password rules (their digest) the password was last checked against, at a login
    # or when set, and whether it met them ("": never checked since this was recorded).
    rules_checked: str = ""
    rules_met: bool = True


def _row(r: tuple[object, ...]) -> UserRow:
    return UserRow(
        str(r[0]),
        Role(str(r[1])),
        str(r[2]),
        float(str(r[3])),
        bool(r[4]),
        int(str(r[5])),
        float(str(r[6])),
        str(r[7]),
        str(r[8] or ""),
        bool(r[9]),
        int(str(r[10])),
        str(r[11]),
        bool(r[12]),
    )


class UserStore:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    @staticmethod
    def erase_all(conn: StateConnection) -> None:
        """For key destruction (decommissioning): the accounts go with their verifiers,
        which the key chain's destruction erases, and the device is back to its first
        start (A-3): an administrator is set with InitializeAdministrator."""
        conn.execute("DELETE FROM users")

    async def get(self, name: str) -> UserRow | None:
        def tx(conn: StateConnection) -> tuple[object, ...] | None:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM users WHERE name = ?",  # noqa: S608
                (name,),
            ).fetchone()

        r = await self._store.run(tx)
        return None if r is None else _row(r)

    async def all(self) -> list[UserRow]:
        def tx(conn: StateConnection) -> list[tuple[object, ...]]:
            return conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()  # noqa: S608

        return [_row(r) for r in await self._store.run(tx)]

    async def by_card(self, fingerprint: str) -> UserRow | None:
        def tx(conn: StateConnection) -> tuple[object, ...] | None:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM users "  # noqa: S608
                "WHERE card_fingerprint = ?",
                (fingerprint,),
            ).fetchone()

        r = await self._store.run(tx)
        return None if r is None else _row(r)

    async def phantoms(self) -> list[tuple[bytes, int, float]]:
        """Unknown names' failures, the least recently tried first."""

        def tx(conn: StateConnection) -> list[tuple[bytes, int, float]]:
            rows = conn.execute(
                "SELECT name_hash, failures, locked_until FROM auth_phantoms ORDER BY seen"
            ).fetchall()
            out = []
            for key, failures, until in rows:
                assert isinstance(key, bytes)
                out.append((key, int(str(failures)), float(str(until))))
            return out

        return await self._store.run(tx)

    async def save_phantom(
        self, name_hash: bytes, failures: int, locked_until: float, keep: int
    ) -> None:
        """Durable before the attempt is answered, like a real account's count; only the
        `keep` most recently tried names are kept."""

        def tx(conn: StateConnection) -> None:
            row = conn.execute("SELECT COALESCE(MAX(seen), 0) FROM auth_phantoms").fetchone()
            seen = int(str(row[0])) + 1 if row else 1
            conn.execute(
                "INSERT INTO auth_phantoms (name_hash, failures, locked_until, seen) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name_hash) DO UPDATE SET "
                "failures = excluded.failures, locked_until = excluded.locked_until, "
                "seen = excluded.seen",
                (name_hash, failures, locked_until, seen),
            )
            conn.execute("DELETE FROM auth_phantoms WHERE seen <= ?", (seen - keep,))

        await self._store.run(tx)

    async def count_role(self, role: Role) -> int:
        def tx(conn: StateConnection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM users WHERE role = ?", (role.value,)
            ).fetchone()
            return int(str(row[0])) if row else 0

        return await self._store.run(tx)

    async def insert(
        self,
        name: str,
        role: Role,
        created_at: str,
        set_at: float,
        temporary: bool,
        *,
        rules: str = "",
    ) -> bool:
        """False when the name is taken. The password met the rules named by `rules`."""

        def tx(conn: StateConnection) -> int:
            return conn.execute(
                "INSERT INTO users (name, role, created_at, password_set_at, temporary, "
                "rules_checked) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, role.value, created_at, set_at, int(temporary), rules),
            ).rowcount

        return await self._store.run(tx) == 1

    async def delete(self, name: str) -> bool:
        def tx(conn: StateConnection) -> int:
            return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount

        return await self._store.run(tx) == 1

    async def password_set(
        self, name: str, set_at: float, temporary: bool, rules: str = ""
    ) -> None:
        """A new password, which met the rules named by `rules` (they were checked)."""

        def tx(conn: StateConnection) -> None:
            conn.execute(
                "UPDATE users SET password_set_at = ?, temporary = ?, rules_checked = ?, "
                "rules_met = 1 WHERE name = ?",
                (set_at, int(temporary), rules, name),
            )

        await self._store.run(tx)

    async def rules_checked(self, name: str, rules: str, met: bool) -> None:
        """The password, given at a login, was checked against the rules named by `rules`."""

        def tx(conn: StateConnection) -> None:
            conn.execute(
                "UPDATE users SET rules_checked = ?, rules_met = ? WHERE name = ?",
                (rules, int(met), name),
            )

        await self._store.run(tx)

    async def set_lockout(self, name: str, failures: int, locked_until: float) -> None:
        """Durable (synchronous=FULL) before the caller answers the attempt."""

        def tx(conn: StateConnection) -> None:
            conn.execute(
                "UPDATE users SET failures = ?, locked_until = ? WHERE name = ?",
                (failures, locked_until, name),
            )

        await self._store.run(tx)

    async def logged_in(self, name: str, at: str) -> None:
        def tx(conn: StateConnection) -> None:
            conn.execute(
                "UPDATE users SET failures = 0, locked_until = 0, last_login_at = ? WHERE name = ?",
                (at, name),
            )

        await self._store.run(tx)

    async def set_card(self, name: str, fingerprint: str | None) -> bool:
        """False when another user has that card already."""

        def tx(conn: StateConnection) -> int:
            taken = conn.execute(
                "SELECT name FROM users WHERE card_fingerprint = ? AND name != ?",
                (fingerprint, name),
            ).fetchone()
            if taken is not None:
                return 0
            return conn.execute(
                "UPDATE users SET card_fingerprint = ? WHERE name = ?", (fingerprint, name)
            ).rowcount

        return await self._store.run(tx) == 1

    async def set_totp(self, name: str, enabled: bool, last_step: int) -> None:
        def tx(conn: StateConnection) -> None:
            conn.execute(
                "UPDATE users SET totp_enabled = ?, totp_last_step = ? WHERE name = ?",
                (int(enabled), last_step, name),
            )

        await self._store.run(tx)

    async def use_totp_step(self, name: str, step: int) -> bool:
        """Record a one-time code's step as used; False if it (or a later one) was."""

        def tx(conn: StateConnection) -> int:
            return conn.execute(
                "UPDATE users SET totp_last_step = ? WHERE name = ? AND totp_last_step < ?",
                (step, name, step),
            ).rowcount

        return await self._store.run(tx) == 1

    async def load_policy(self) -> AuthPolicy:
        def tx(conn: StateConnection) -> tuple[object, ...] | None:
            return conn.execute(
                "SELECT value FROM auth_settings WHERE key = ?", (_POLICY_KEY,)
            ).fetchone()

        row = await self._store.run(tx)
        if row is None:
            return AuthPolicy()
        return msgspec.json.decode(str(row[0]), type=AuthPolicy)

    async def save_policy(self, policy: AuthPolicy) -> None:
        text = msgspec.json.encode(policy).decode()

        def tx(conn: StateConnection) -> None:
            conn.execute(
                "INSERT INTO auth_settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_POLICY_KEY, text),
            )

        await self._store.run(tx)
