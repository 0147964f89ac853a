"""E-1 under power cuts: a process putting and deleting objects is SIGKILLed 20 times at
random moments. After every kill the store, opened again, lists no partial object, reads
every acknowledged object back intact, and lists no object whose delete was acknowledged."""

from __future__ import annotations

import asyncio
import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.daemon import ROOT
from tests.support.store_stack import ADMIN, read_bytes, stack

KILLS = 20


def _ops(root: Path) -> list[list[str]]:
    path = root / "ops.log"
    if not path.exists():
        return []
    # A line cut by the kill has no newline: it was never acknowledged.
    text = path.read_text()
    return [line.split() for line in text.splitlines(keepends=True) if line.endswith("\n")]


async def _check(root: Path) -> tuple[int, int]:
    ops = _ops(root)
    started = {(op[1], int(op[2])) for op in ops if op[0] == "put-start"}
    acked = {op[1]: (op[2], int(op[3])) for op in ops if op[0] == "put-done"}
    deleting = {op[1] for op in ops if op[0] == "del-start"}
    deleted = {op[1] for op in ops if op[0] == "del-done"}
    async with stack(root) as s:
        listed = {o.id: o for o in await s.store.objects(ADMIN)}
        for object_id, info in listed.items():
            data = await read_bytes(s, object_id, ADMIN)  # authenticates every segment
            digest = hashlib.sha256(data).hexdigest()
            if object_id in acked:
                assert acked[object_id] == (digest, len(data)), object_id
            else:  # committed, then killed before the acknowledgement was logged
                assert (digest, len(data)) in started, object_id
            assert info.size == len(data)
        for object_id in acked:
            if object_id not in deleting:
                assert object_id in listed, f"acknowledged object {object_id} lost"
        assert not deleted & set(listed), "an acknowledged delete came back"
        # Nothing on disk but the listed objects' ciphertext.
        assert {p.name for p in s.objects.iterdir()} == set(listed)
    return len(listed), len(acked)


def test_twenty_kills_during_puts_and_deletes(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    for kill in range(KILLS):
        out = tmp_path / f"driver-{kill}.log"
        with out.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.store_crash", str(tmp_path), str(kill)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while b"ready\n" not in out.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.6))
        assert proc.poll() is None, out.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        asyncio.run(_check(tmp_path))
    ops = _ops(tmp_path)
    counts = {
        kind: sum(op[0] == kind for op in ops)
        for kind in ("put-start", "put-done", "del-start", "del-done")
    }
    print("operations over the 20 runs:", counts)  # shown with -s; for the issue note
    assert counts["put-done"] >= KILLS
    assert counts["del-done"] >= 5
    # Kills landed inside operations: some puts never finished.
    assert counts["put-start"] > counts["put-done"]
