"""A clock tests advance by hand: sleepers wake when the fake time passes their deadline."""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools


class FakeClock:
    def __init__(self, start: dt.datetime | None = None) -> None:
        self._mono = 1000.0
        self._wall = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> dt.datetime:
        return self._wall + dt.timedelta(seconds=self._mono - 1000.0)

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + max(seconds, 0.0), next(self._seq), fut))
        await fut

    def set_wall(self, step_s: float) -> None:
        """Step the wall clock (as settimeofday would); monotonic time is untouched."""
        self._wall += dt.timedelta(seconds=step_s)

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in deadline order and letting them run."""
        target = self._mono + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._mono = max(self._mono, deadline)
            if not fut.done():
                fut.set_result(None)
            await settle()
        self._mono = target
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let ready callbacks and tasks run (no wall-clock time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
