"""WatchStatus never goes quiet for longer than its keep-alive (issue 25): a client whose
read timeout is 30 s (ours by default) keeps its stream through a calm hour, and a
change is still sent at once."""

from __future__ import annotations

import asyncio

from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.system.api import Status
from mfpsecd.system.status import KEEPALIVE_S, BoardInfo, StatusService
from tests.support.fakeclock import FakeClock


def test_a_quiet_status_stream_sends_keepalives_and_changes_at_once() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        health = HealthRegistry(clock)
        health.set("ipc", HealthState.OK, "listening")
        status = StatusService(clock, health, BoardInfo("b", "simulated"))
        stream = status.watch()
        first = await anext(stream)
        assert first.components[0].name == "ipc"

        async def waiting() -> asyncio.Future[Status]:
            pending = asyncio.ensure_future(anext(stream))
            while not clock.sleepers and not pending.done():
                await asyncio.sleep(0.001)
            assert not pending.done()  # nothing to send yet: it waits
            return pending

        # Nothing changes: a reply anyway, every KEEPALIVE_S, not before.
        for _ in range(3):
            pending = await waiting()
            await clock.advance(KEEPALIVE_S - 1)
            assert not pending.done()
            await clock.advance(1)
            await asyncio.wait_for(pending, 5)
        # A change: at once, not at the next keep-alive.
        pending = await waiting()
        health.set("ipc", HealthState.DEGRADED, "busy")
        changed = await asyncio.wait_for(pending, 5)
        assert changed.components[0].state is HealthState.DEGRADED

    asyncio.run(scenario())
