"""The secret store: named secrets (passwords, certificate private keys, SNMP/SMTP
credentials, TOTP seeds) sealed with AES-256-GCM under the key chain's master key.

The entry's name and kind are the associated data, so a sealed value moved to another
name (or relabelled) fails authentication. Services get plaintext as SecretBytes; over
IPC only names and metadata ever leave the daemon (K-4, FPT_SKP_EXT.1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.rotation import Reseal, SealedRecord

MAX_SECRET_BYTES = 64 * 1024
_AAD_PREFIX = b"mfpsecd secret v1\0"


class SecretKind(enum.Enum):
    PASSWORD = "password"  # noqa: S105 (a kind of secret, not one)
    PRIVATE_KEY = "private-key"  # a certificate's private key
    CREDENTIAL = "credential"  # SNMP community/USM keys, SMTP and server credentials
    TOTP_SEED = "totp-seed"
    OTHER = "other"


@dataclass(frozen=True)
class SecretInfo:
    name: str
    kind: SecretKind
    size: int
    generation: int
    created_at: str
    updated_at: str


def _aad(name: str, kind: str) -> bytes:
    return _AAD_PREFIX + name.encode() + b"\0" + kind.encode()


class SecretStore:
    def __init__(self, store: StateStore, chain: KeyChain, clock: Clock) -> None:
        self._store = store
        self._chain = chain
        self._clock = clock
        chain.add_resealer(self._reseal_batch)

    async def put(self, name: str, kind: SecretKind, value: SecretBytes) -> SecretInfo:
        """Store or replace a secret. The caller keeps ownership of value (and wipes it)."""
        if len(value) > MAX_SECRET_BYTES:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="value")
        async with self._chain.lock:
            generation, nonce, sealed = self._chain.seal(_aad(name, kind.value), value)
            now = rfc3339(self._clock)
            size = len(value)

            def tx(conn: StateConnection) -> str:
                row = conn.execute(
                    "SELECT created_at FROM secrets WHERE name = ?", (name,)
                ).fetchone()
                created = str(row[0]) if row else now
                conn.execute(
                    "INSERT INTO secrets (name, kind, generation, nonce, sealed, size, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
                    "generation = excluded.generation, nonce = excluded.nonce, "
                    "sealed = excluded.sealed, size = excluded.size, "
                    "updated_at = excluded.updated_at",
                    (name, kind.value, generation, nonce, sealed, size, created, now),
                )
                return created

            created = await self._store.run(tx)
            return SecretInfo(name, kind, size, generation, created, now)

    async def get(self, name: str) -> SecretBytes:
        """The plaintext, for services inside the daemon only. Wipe it after use."""
        self._chain.require_ready()

        def tx(conn: StateConnection) -> tuple[object, ...] | None:
            return conn.execute(
                "SELECT kind, generation, nonce, sealed FROM secrets WHERE name = ?", (name,)
            ).fetchone()

        row = await self._store.run(tx)
        if row is None:
            raise MfpsecError(ErrorCode.SECRET_NOT_FOUND, name=name)
        kind, generation, nonce, sealed = row
        assert isinstance(nonce, bytes) and isinstance(sealed, bytes)
        return self._chain.open(
            int(str(generation)), _aad(name, str(kind)), nonce, sealed, f"secret {name}"
        )

    async def delete(self, name: str) -> None:
        async with self._chain.lock:

            def tx(conn: StateConnection) -> int:
                cur = conn.execute(
                    "UPDATE secrets SET sealed = zeroblob(length(sealed)) WHERE name = ?", (name,)
                )
                conn.execute("DELETE FROM secrets WHERE name = ?", (name,))
                return cur.rowcount

            if await self._store.run(tx) == 0:
                raise MfpsecError(ErrorCode.SECRET_NOT_FOUND, name=name)

    async def list(self) -> list[SecretInfo]:
        def tx(conn: StateConnection) -> list[tuple[object, ...]]:
            return conn.execute(
                "SELECT name, kind, size, generation, created_at, updated_at "
                "FROM secrets ORDER BY name"
            ).fetchall()

        return [
            SecretInfo(str(n), SecretKind(str(k)), int(str(s)), int(str(g)), str(c), str(u))
            for n, k, s, g, c, u in await self._store.run(tx)
        ]

    async def count(self) -> int:
        def tx(conn: StateConnection) -> int:
            row = conn.execute("SELECT COUNT(*) FROM secrets").fetchone()
            return int(str(row[0])) if row else 0

        return await self._store.run(tx)

    @staticmethod
    def erase_all(conn: StateConnection) -> None:
        """For key destruction: overwrite, then delete, every sealed secret."""
        conn.execute(
            "UPDATE secrets SET sealed = zeroblob(length(sealed)), nonce = zeroblob(length(nonce))"
        )
        conn.execute("DELETE FROM secrets")

    async def _reseal_batch(self, old: int, new: int, limit: int, reseal: Reseal) -> int:
        def read(conn: StateConnection) -> list[tuple[object, ...]]:
            return conn.execute(
                "SELECT name, kind, nonce, sealed FROM secrets "
                "WHERE generation = ? ORDER BY name LIMIT ?",
                (old, limit),
            ).fetchall()

        rows = await self._store.run(read)
        updates = []
        for name, kind, nonce, sealed in rows:
            assert isinstance(nonce, bytes) and isinstance(sealed, bytes)
            new_nonce, new_sealed = reseal(
                old, new, SealedRecord(_aad(str(name), str(kind)), nonce, sealed, f"secret {name}")
            )
            updates.append((new, new_nonce, new_sealed, str(name), old))

        def write(conn: StateConnection) -> None:
            for row in updates:
                conn.execute(
                    "UPDATE secrets SET generation = ?, nonce = ?, sealed = ? "
                    "WHERE name = ? AND generation = ?",
                    row,
                )

        if updates:
            await self._store.run(write)
        return len(rows)
