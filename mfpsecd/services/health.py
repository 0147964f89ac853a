"""Health of the daemon's components, with change notification for WatchStatus."""

from __future__ import annotations

import asyncio
import datetime as dt

from mfpsecd.api.types import ComponentHealth, HealthState
from mfpsecd.ports import Clock


class HealthRegistry:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._components: dict[str, ComponentHealth] = {}
        self._changed = asyncio.Event()
        self.generation = 0

    def set(self, name: str, state: HealthState, detail: str = "", *,
            restarts: int | None = None) -> None:
        old = self._components.get(name)
        if restarts is None:
            restarts = old.restarts if old else 0
        if old and (old.state, old.detail, old.restarts) == (state, detail, restarts):
            return
        since = old.since if old and old.state == state else rfc3339(self._clock)
        self._components[name] = ComponentHealth(name, state, detail, restarts, since)
        self.touch()

    def touch(self) -> None:
        """Wake watchers (a change outside the component table, e.g. the daemon state)."""
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def components(self) -> list[ComponentHealth]:
        return [self._components[k] for k in sorted(self._components)]

    def get(self, name: str) -> ComponentHealth | None:
        return self._components.get(name)

    async def wait_change(self, seen_generation: int) -> int:
        while self.generation == seen_generation:
            await self._changed.wait()
        return self.generation


def rfc3339(clock: Clock, timespec: str = "milliseconds") -> str:
    """The clock's UTC time as RFC 3339 (2026-01-01T00:00:00.000Z; audit records use
    timespec="microseconds")."""
    return utc_text(clock.now(), timespec)


def utc_text(t: dt.datetime, timespec: str = "milliseconds") -> str:
    return t.isoformat(timespec=timespec).replace("+00:00", "Z")
