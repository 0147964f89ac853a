"""The daemon's status as one value, and a stream of it for WatchStatus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec

from mfpsecd import __version__
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.health import ComponentHealth, HealthRegistry, HealthState
from mfpsecd.base.waits import first_of
from mfpsecd.system.api import DaemonState, Status
from mfpsecd.system.boots import BootEntry

KEEPALIVE_S = 15.0  # WatchStatus sends the status at least this often


@dataclass(frozen=True)
class BoardInfo:
    name: str
    kind: str


class StatusService:
    def __init__(self, clock: Clock, health: HealthRegistry, board: BoardInfo) -> None:
        self._clock = clock
        self._health = health
        self._board = board
        self._started_mono = clock.monotonic()
        self._started_at = rfc3339(clock)
        self._boot: BootEntry | None = None
        self._lifecycle = DaemonState.STARTING
        self._cached: tuple[int, Status] | None = None  # (health generation, status)
        self._notices: set[str] = set()

    def set_boot(self, boot: BootEntry) -> None:
        self._boot = boot
        self._health.touch()

    def set_notice(self, notice: str, active: bool) -> None:
        if (notice in self._notices) != active:
            self._notices.symmetric_difference_update({notice})
            self._health.touch()

    def set_lifecycle(self, state: DaemonState) -> None:
        self._lifecycle = state
        self._health.touch()

    @property
    def started_at(self) -> str:
        return self._started_at

    def _state(self, components: list[ComponentHealth]) -> DaemonState:
        if self._lifecycle is not DaemonState.READY:
            return self._lifecycle
        unhealthy = any(c.state is not HealthState.OK for c in components)
        return DaemonState.DEGRADED if unhealthy else DaemonState.READY

    def get_status(self) -> Status:
        _, template = self.snapshot()
        return msgspec.structs.replace(template, uptime_seconds=self.uptime())

    def uptime(self) -> float:
        return round(self._clock.monotonic() - self._started_mono, 3)

    def snapshot(self) -> tuple[int, Status]:
        """(generation, status with uptime 0): everything but the uptime changes only with
        the health generation (every change to components, boot record or lifecycle
        touches it), so the hot path reuses this until the generation moves."""
        generation = self._health.generation
        cached = self._cached
        if cached is None or cached[0] != generation:
            cached = self._cached = (generation, self._build(0.0))
        return cached

    def _build(self, uptime: float) -> Status:
        boot = self._boot
        components = self._health.components()
        return Status(
            version=__version__,
            board=self._board.name,
            board_kind=self._board.kind,
            state=self._state(components),
            started_at=self._started_at,
            uptime_seconds=uptime,
            boot_count=boot.boot_count if boot else 0,
            previous_shutdown=boot.previous_shutdown if boot else "none",
            components=components,
            notices=sorted(self._notices),
        )

    async def watch(self) -> AsyncIterator[Status]:
        """The status now, then at each change, and at least every KEEPALIVE_S: a quiet
        stream is never taken for a dead one by a client's read timeout (30 s by
        default in ours)."""
        generation = self._health.generation
        yield self.get_status()
        while True:
            changed = self._health.wait_change(generation)
            if await first_of(changed, self._clock.sleep(KEEPALIVE_S)) == 0:
                generation = self._health.generation
            yield self.get_status()
