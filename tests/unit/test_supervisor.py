from __future__ import annotations

import asyncio

from mfpsecd.base.backoff import BackoffPolicy
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.supervisor import Supervisor
from tests.support.fakeclock import FakeClock, settle


def test_crashing_task_restarts_with_backoff_then_gives_up() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        health = HealthRegistry(clock)
        sup = Supervisor(
            clock, health, BackoffPolicy(initial_s=1, factor=2, max_s=4, give_up_after=4)
        )
        runs = 0

        async def flaky() -> None:
            nonlocal runs
            runs += 1
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason="disk")

        sup.add("flaky", flaky)
        await settle()
        h = health.get("flaky")
        assert h is not None and h.state is HealthState.BACKOFF
        assert h.detail == "io.mfpsecd.System.StateUnavailable; restart in 1s"
        await clock.advance(1)
        assert runs == 2 and health.get("flaky").restarts == 1  # type: ignore[union-attr]
        await clock.advance(2)
        assert runs == 3
        await clock.advance(4)
        assert runs == 4
        assert health.get("flaky").state is HealthState.FAILED  # type: ignore[union-attr]
        await clock.advance(100)
        assert runs == 4
        await sup.stop()

    asyncio.run(scenario())


def test_healthy_task_and_clean_stop() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        health = HealthRegistry(clock)
        sup = Supervisor(clock, health)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await clock.sleep(10)
                ticks += 1

        sup.add("ticker", ticker)
        await settle()
        await clock.advance(35)
        assert ticks == 3
        assert health.get("ticker").state is HealthState.OK  # type: ignore[union-attr]
        gen = health.generation
        await sup.stop()
        assert health.get("ticker").state is HealthState.STOPPED  # type: ignore[union-attr]
        assert health.generation > gen

    asyncio.run(scenario())


def test_unexpected_exception_is_reported_without_detail() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        health = HealthRegistry(clock)
        sup = Supervisor(clock, health)

        async def buggy() -> None:
            raise KeyError("secret-looking-detail")

        sup.add("buggy", buggy)
        await settle()
        h = health.get("buggy")
        assert h is not None and h.state is HealthState.BACKOFF
        assert "secret-looking-detail" not in h.detail and h.detail.startswith("KeyError")
        await sup.stop()

    asyncio.run(scenario())
