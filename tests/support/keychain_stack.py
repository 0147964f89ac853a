"""A key chain on a real swtpm and state store, without the daemon: what the key-chain
tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.tpm2 import Tpm2Backend
from mfpsecd.keys.backup import BACKUP_COST
from mfpsecd.keys.chain import ChainState, KeyChain
from mfpsecd.keys.ports import PassphraseCost
from mfpsecd.keys.secrets import SecretKind, SecretStore
from tests.support.fakeclock import FakeClock
from tests.support.tpm import SwtpmHandle

SECRETS = {
    "admin-password": (SecretKind.PASSWORD, b"correct horse battery staple"),
    "smtp-credential": (SecretKind.CREDENTIAL, b"user:pa55word!"),
    "tls-key": (SecretKind.PRIVATE_KEY, bytes(range(256)) * 8),
    "totp-admin": (SecretKind.TOTP_SEED, b"JBSWY3DPEHPK3PXP"),
}


PASSPHRASE = b"Backup-passphrase-2026!"


FAST = PassphraseCost(memory_kib=8 * 1024, iterations=1, lanes=1)  # error-path tests only


@dataclass
class Stack:
    state: SqliteState
    tpm: Tpm2Backend
    chain: KeyChain
    secrets: SecretStore
    health: HealthRegistry
    clock: FakeClock

    async def close(self) -> None:
        await self.chain.close()
        await self.tpm.close()
        await self.state.close()


async def open_stack(
    state_dir: Path,
    tpm: SwtpmHandle,
    *,
    rotate_batch: int = 64,
    backup_cost: PassphraseCost | None = None,
    firmware_pcr: int | None = None,
    backend: Tpm2Backend | None = None,
) -> Stack:
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(state_dir / "state.sqlite3")
    await state.open()
    backend = backend or tpm.backend()
    chain = KeyChain(
        state,
        backend,
        NativeKeyCrypto(),
        clock,
        health,
        rotate_batch=rotate_batch,
        backup_cost=backup_cost or BACKUP_COST,
        firmware_pcr=firmware_pcr,
    )
    secrets = SecretStore(state, chain, clock)
    await backend.open()
    await chain.start()
    return Stack(state, backend, chain, secrets, health, clock)


async def put_all(stack: Stack) -> None:
    for name, (kind, value) in SECRETS.items():
        await stack.secrets.put(name, kind, SecretBytes(bytearray(value)))


async def assert_all_readable(stack: Stack) -> None:
    assert stack.chain.state is ChainState.READY
    for name, (_, value) in SECRETS.items():
        with await stack.secrets.get(name) as plain:
            assert bytes(plain.view()) == value


def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(fn())


def expect(code: ErrorCode) -> Any:
    return pytest.raises(MfpsecError, match=code.wire_name.replace(".", r"\."))
