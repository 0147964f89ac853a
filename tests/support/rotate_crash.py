"""Run one master-key rotation and SIGKILL this process at the Nth crash point.

    python -m tests.support.rotate_crash STATE_DIR TCTI N

Crash points are around and inside every state-store transaction the rotation makes
(before it, after its work but before COMMIT, after COMMIT) and around checkpoints. With
N beyond the last point the rotation completes and the number of points is printed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.base.state import StateConnection
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.tpm2 import Tpm2Backend
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.secrets import SecretStore
from tests.support.fakeclock import FakeClock

T = TypeVar("T")
BATCH = 3


class CrashingStore:
    """A SqliteState that counts crash points and kills the process at one of them."""

    def __init__(self, inner: SqliteState, kill_at: int) -> None:
        self.inner = inner
        self.kill_at = kill_at
        self.points = 0
        self.armed = False

    def tick(self, where: str) -> None:
        if not self.armed:
            return
        self.points += 1
        if self.points == self.kill_at:
            print(f"killed at {self.points}: {where}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    @property
    def schema_version(self) -> int:
        return self.inner.schema_version

    async def run(self, fn: Callable[[StateConnection], T]) -> T:
        self.tick("before transaction")

        def wrapped(conn: StateConnection) -> T:
            result = fn(conn)
            self.tick("inside transaction, before COMMIT")  # runs in the store's thread
            return result

        result = await self.inner.run(wrapped)
        self.tick("after COMMIT")
        return result

    async def checkpoint(self) -> None:
        self.tick("before checkpoint")
        await self.inner.checkpoint()
        self.tick("after checkpoint")

    async def close(self) -> None:
        await self.inner.close()


async def main(state_dir: Path, tcti: str, kill_at: int) -> None:
    clock = FakeClock()
    inner = SqliteState(state_dir / "state.sqlite3")
    await inner.open()
    store = CrashingStore(inner, kill_at)
    tpm = Tpm2Backend(tcti, "swtpm")
    await tpm.open()
    chain = KeyChain(
        store, tpm, NativeKeyCrypto(), clock, HealthRegistry(clock), rotate_batch=BATCH
    )
    SecretStore(store, chain, clock)
    await chain.start()
    store.armed = True
    generation = await chain.rotate()
    store.armed = False
    print(f"completed: generation {generation}, {store.points} crash points", flush=True)
    await chain.close()
    await tpm.close()
    await store.close()


def cli(argv: list[str]) -> Any:
    asyncio.run(main(Path(argv[1]), argv[2], int(argv[3])))


if __name__ == "__main__":
    cli(sys.argv)
