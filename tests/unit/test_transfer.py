"""The transfer watchdog and worker pools (services.transfer), on the fake clock: what
counts as stalled, the deadline, and the per-owner share. The real streams (a pipe that
stops, through the daemon) are in tests/integration/test_stalled_transfers.py."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.transfer import PolledReader, TransferLimits, WorkerPool, watched
from tests.support.aio import sync
from tests.support.fakeclock import FakeClock, settle

LIMITS = TransferLimits(idle_s=10.0, total_s=100.0)


class Trickle:
    """A transfer that moves bytes when told to and fails once cancelled."""

    def __init__(self) -> None:
        self.moved = 0
        self.cancelled = asyncio.Event()
        self.finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def cancel(self) -> None:
        self.cancelled.set()

    async def run(self) -> int:
        waiter: asyncio.Future[object] = asyncio.ensure_future(self.cancelled.wait())
        finished: asyncio.Future[object] = self.finished  # type: ignore[assignment]
        await asyncio.wait({waiter, finished}, return_when=asyncio.FIRST_COMPLETED)
        if self.finished.done():
            waiter.cancel()
            return self.finished.result()
        raise MfpsecError(ErrorCode.STORE_IO_ERROR, object="o", reason="ECANCELED")


@sync
async def test_a_transfer_that_keeps_moving_completes() -> None:
    clock = FakeClock()
    t = Trickle()
    call = asyncio.ensure_future(watched(t.run(), t, clock, LIMITS, "object o"))
    for _ in range(9):  # 90 s, a byte every 9 s: never idle for 10
        await clock.advance(9)
        t.moved += 1
    t.finished.set_result(9)
    assert await call == 9 and not t.cancelled.is_set()


@sync
async def test_a_stalled_transfer_is_cancelled_and_says_why() -> None:
    clock = FakeClock()
    t = Trickle()
    call = asyncio.ensure_future(watched(t.run(), t, clock, LIMITS, "object o"))
    await clock.advance(5)
    t.moved = 100
    await clock.advance(9)
    assert not call.done()  # 9 s since the last byte
    await clock.advance(2)
    await settle()
    with pytest.raises(MfpsecError) as exc:
        await call
    assert exc.value.code is ErrorCode.TRANSFER_TIMEOUT and t.cancelled.is_set()
    assert exc.value.params["reason"] == "no data for 10 s (object o, 100 bytes moved)"


@sync
async def test_a_slow_transfer_ends_at_its_deadline() -> None:
    clock = FakeClock()
    t = Trickle()
    call = asyncio.ensure_future(watched(t.run(), t, clock, LIMITS, "firmware archive"))
    started = clock.monotonic()
    while not call.done():  # a byte every 9 s: never idle, but slow
        await clock.advance(9)
        await settle()
        t.moved += 1
    assert 100 <= clock.monotonic() - started <= 120  # not before the deadline
    with pytest.raises(MfpsecError) as exc:
        await call
    assert "longer than the 100 s deadline (firmware archive" in exc.value.params["reason"]


@sync
async def test_an_owner_holds_at_most_its_share_of_the_pool() -> None:
    pool = WorkerPool("store", workers=3, per_owner=2)
    release = threading.Event()
    held = [asyncio.ensure_future(pool.run(release.wait, "alice")) for _ in range(2)]
    await settle()
    with pytest.raises(MfpsecError) as exc:
        await pool.run(lambda: True, "alice")
    assert exc.value.code is ErrorCode.BUSY
    assert await pool.run(lambda: "bob's", "bob") == "bob's"  # the third thread
    release.set()
    await asyncio.gather(*held)
    assert await pool.run(lambda: "again", "alice") == "again"  # the share is back
    pool.close()


def test_a_polled_read_gives_up_on_cancel() -> None:
    r, w = os.pipe()
    reader = PolledReader(r)
    os.write(w, b"abc")
    buf = bytearray(10)
    assert reader.readinto(memoryview(buf)) == 3 and reader.moved == 3
    threading.Timer(0.3, reader.cancel).start()
    with pytest.raises(OSError, match="cancelled"):
        reader.readinto(memoryview(buf))  # nothing more comes: waits until cancelled
    os.close(r)
    os.close(w)
