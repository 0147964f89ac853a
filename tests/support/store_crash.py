"""Puts and deletes objects in a job store until it is killed.

    python -m tests.support.store_crash ROOT SEED

Every operation is logged to ROOT/ops.log (fsynced) before it starts and after it
returns, so whoever SIGKILLs this process knows which objects were acknowledged and
which deletes had begun:
    put-start <sha256> <size>
    put-done <id> <sha256> <size>
    del-start <id>
    del-done <id>
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import threading
from pathlib import Path

from mfpsecd.store.service import ObjectKind
from tests.support.store_stack import ALICE, CLI, stack


class OpsLog:
    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, line: str) -> None:
        os.write(self._fd, (line + "\n").encode())
        os.fsync(self._fd)


async def main(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    ops = OpsLog(root / "ops.log")
    async with stack(root) as s:
        print("ready", flush=True)
        while True:
            listed = [o.id for o in await s.store.objects(ALICE)]
            if listed and rng.random() < 0.4:
                victim = rng.choice(listed)
                ops.write(f"del-start {victim}")
                await s.store.delete(victim, ALICE, CLI)
                ops.write(f"del-done {victim}")
                continue
            data = rng.randbytes(rng.choice([0, 1, 5000, 1 << 20, (2 << 20) + 3]))
            digest = hashlib.sha256(data).hexdigest()
            ops.write(f"put-start {digest} {len(data)}")
            r, w = os.pipe()

            def feed(w: int = w, data: bytes = data) -> None:
                with os.fdopen(w, "wb") as f:
                    f.write(data)

            feeder = threading.Thread(target=feed)
            feeder.start()
            try:
                info = await s.store.put(
                    r, owner="alice", job="crash", kind=ObjectKind.SPOOL, name="p"
                )
            finally:
                os.close(r)
                feeder.join()
            ops.write(f"put-done {info.id} {digest} {len(data)}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
