"""Health of the daemon's components, with change notification for WatchStatus."""

from __future__ import annotations

import asyncio
import enum

import msgspec

from mfpsecd.base.clock import Clock, rfc3339


class HealthState(enum.Enum):
    """How one daemon component or supervised task is doing."""

    STARTING = "starting"  # not running yet
    OK = "ok"
    DEGRADED = "degraded"  # working with reduced protection (e.g. software keys, no TPM)
    BACKOFF = "backoff"  # failed, restarting after a delay
    FAILED = "failed"  # gave up, or a required component is down
    STOPPED = "stopped"  # stopped with the daemon


class ComponentHealth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Health of one daemon component or supervised task."""

    name: str  # stable, e.g. "keys", "audit", "ipc", "forward:<destination>"
    state: HealthState  # since: when it entered this state
    # What is going on, for a person ("" when nothing needs saying); it may quote paths,
    # addresses and peers' errors: untrusted text: escape it to show it.
    detail: str
    restarts: int  # times a supervised task was restarted since the daemon started; else 0
    since: str  # RFC 3339 UTC time of the last state change


class HealthRegistry:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._components: dict[str, ComponentHealth] = {}
        self._changed = asyncio.Event()
        self.generation = 0

    def set(
        self, name: str, state: HealthState, detail: str = "", *, restarts: int | None = None
    ) -> None:
        old = self._components.get(name)
        if restarts is None:
            restarts = old.restarts if old else 0
        if old and (old.state, old.detail, old.restarts) == (state, detail, restarts):
            return
        since = old.since if old and old.state == state else rfc3339(self._clock)
        self._components[name] = ComponentHealth(name, state, detail, restarts, since)
        self.touch()

    def forget(self, name: str) -> None:
        """A component that is gone for good (a SIEM destination an administrator removed)."""
        if self._components.pop(name, None) is not None:
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
