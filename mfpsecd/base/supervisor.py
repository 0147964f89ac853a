"""Runs the daemon's long-lived tasks, restarts them with backoff, reports their health."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from mfpsecd.base.backoff import BackoffPolicy, BackoffState
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState

log = structlog.get_logger("mfpsecd.supervisor")

TaskFactory = Callable[[], Awaitable[None]]


@dataclass
class _Supervised:
    name: str
    factory: TaskFactory
    backoff: BackoffState
    runner: asyncio.Task[None] | None = None
    restarts: int = 0


class Supervisor:
    """A supervised task is a coroutine that runs until cancelled. Returning or raising is
    a failure: the task is restarted after a growing delay, and given up after the policy's
    limit of quick consecutive failures. Its health is kept in the HealthRegistry."""

    def __init__(
        self, clock: Clock, health: HealthRegistry, policy: BackoffPolicy | None = None
    ) -> None:
        self._clock = clock
        self._health = health
        self._policy = policy or BackoffPolicy()
        self._tasks: dict[str, _Supervised] = {}
        self._stopping = False

    def add(self, name: str, factory: TaskFactory) -> None:
        if name in self._tasks:
            raise ValueError(f"task {name} already supervised")
        sup = _Supervised(name, factory, BackoffState(self._policy))
        self._tasks[name] = sup
        self._health.set(name, HealthState.STARTING)
        sup.runner = asyncio.create_task(self._run(sup), name=f"supervise:{name}")

    async def _run(self, sup: _Supervised) -> None:
        while not self._stopping:
            started = self._clock.monotonic()
            self._health.set(sup.name, HealthState.OK, restarts=sup.restarts)
            try:
                await sup.factory()
                reason = "exited unexpectedly"
            except asyncio.CancelledError:
                raise
            except MfpsecError as exc:
                reason = exc.code.wire_name
                log.warning("task_failed", task=sup.name, error=exc.code.wire_name)
            except Exception as exc:
                reason = type(exc).__name__
                log.error("task_crashed", task=sup.name, exc_info=True)
            if self._stopping:
                return
            delay = sup.backoff.on_exit(self._clock.monotonic() - started)
            if delay is None:
                self._health.set(
                    sup.name,
                    HealthState.FAILED,
                    f"gave up after repeated failures: {reason}",
                    restarts=sup.restarts,
                )
                log.error("task_given_up", task=sup.name)
                return
            self._health.set(
                sup.name,
                HealthState.BACKOFF,
                f"{reason}; restart in {delay:g}s",
                restarts=sup.restarts,
            )
            await self._clock.sleep(delay)
            sup.restarts += 1

    async def remove(self, name: str) -> None:
        """Stop one task for good (its part was reconfigured away) and forget its health;
        a task of that name may be added again afterwards."""
        sup = self._tasks.pop(name, None)
        if sup is None:
            return
        if sup.runner is not None:
            sup.runner.cancel()
            await asyncio.gather(sup.runner, return_exceptions=True)
        self._health.forget(name)

    async def stop(self) -> None:
        self._stopping = True
        runners = [s.runner for s in self._tasks.values() if s.runner is not None]
        for r in runners:
            r.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        for sup in self._tasks.values():
            self._health.set(sup.name, HealthState.STOPPED, restarts=sup.restarts)
