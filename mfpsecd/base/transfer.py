"""Descriptor-fed transfers that no peer can stall for ever, and the bounded pools
blocking work runs in.

A client that stops feeding a pipe (or stops reading one) would hold a worker thread
in read() or write() until it closes the pipe. Two things prevent that:
- `watched` runs a transfer beside a watchdog that cancels it when no byte moved for
  the inactivity timeout or when the deadline passed; the transfer's blocking reads and
  writes wait in short ticks and give up on cancel (native streams, PolledReader), and
  the caller gets TransferTimeout.
- `WorkerPool` gives a capability its own threads, and each owner a share of them, so a
  stalled upload exhausts at most its owner's share of the job store's pool, never the
  threads the IP filter, authentication or status use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import io
import os
import select
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import TransfersSection
from mfpsecd.base.errors import ErrorCode, MfpsecError

log = structlog.get_logger("mfpsecd.transfer")
T = TypeVar("T")


class Progress(Protocol):
    """A blocking transfer seen from outside its thread: how many bytes it moved so far,
    and a way to make it give up (it then fails within a fraction of a second, even when
    its peer stalls)."""

    @property
    def moved(self) -> int: ...

    def cancel(self) -> None: ...


TICK_S = 0.1  # how often a PolledReader looks at its cancel flag while the peer stalls


@dataclass(frozen=True)
class TransferLimits:
    idle_s: float  # no byte moved for this long: abandoned
    total_s: float  # however slowly it moves, it ends by then

    @classmethod
    def of(cls, section: TransfersSection) -> TransferLimits:
        return cls(section.idle_timeout_s, section.deadline_s)


# [transfers]'s defaults, for services built without a configuration (tests, tools).
DEFAULT_LIMITS = TransferLimits.of(TransfersSection())


async def watched(
    work: Awaitable[T], progress: Progress, clock: Clock, limits: TransferLimits, what: str
) -> T:
    """`work`'s result, unless it stalls: then it is cancelled through `progress` and
    TransferTimeout raised once it has stopped (so nothing it holds outlives the call)."""
    task = asyncio.ensure_future(work)
    started = last_at = clock.monotonic()
    last_moved = progress.moved
    reason = ""
    tick = min(1.0, limits.idle_s / 4)
    try:
        while not task.done():
            sleeper = asyncio.ensure_future(clock.sleep(tick))
            try:
                await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
            if task.done():
                break
            now = clock.monotonic()
            moved = progress.moved
            if moved != last_moved:
                last_moved, last_at = moved, now
            if now - last_at >= limits.idle_s:
                reason = f"no data for {limits.idle_s:g} s ({what}, {moved} bytes moved)"
            elif now - started >= limits.total_s:
                reason = (
                    f"longer than the {limits.total_s:g} s deadline ({what}, {moved} bytes moved)"
                )
            if reason:
                progress.cancel()
                break
        return await task
    except asyncio.CancelledError:
        progress.cancel()  # the caller went away: so does the transfer's thread
        raise
    except Exception:
        if reason:
            log.warning("transfer_abandoned", what=what, reason=reason)
            raise MfpsecError(ErrorCode.TRANSFER_TIMEOUT, reason=reason) from None
        raise


class PolledReader(io.RawIOBase):
    """A descriptor read in ticks of poll(): cancel() makes a stalled read fail within
    TICK_S. Counts the bytes read (Progress). The descriptor stays the caller's."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._moved = 0
        self._cancel = threading.Event()
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    @property
    def moved(self) -> int:
        return self._moved

    def cancel(self) -> None:
        self._cancel.set()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._poll.poll(int(TICK_S * 1000)):
            if self._cancel.is_set():
                raise OSError(125, "transfer cancelled")  # ECANCELED
        if self._cancel.is_set():
            raise OSError(125, "transfer cancelled")
        data = os.read(self._fd, len(buffer))
        buffer[: len(data)] = data
        self._moved += len(data)
        return len(data)


class WorkerPool:
    """Threads of one capability, each owner holding at most `per_owner` of them: one
    more is refused with Busy at once; when the pool is full, callers wait their turn."""

    def __init__(self, name: str, workers: int, per_owner: int | None = None) -> None:
        self.name = name
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._slots = asyncio.Semaphore(workers)
        self._per_owner = per_owner
        self._held: dict[str, int] = {}

    async def run(self, fn: Callable[[], T], owner: str = "") -> T:
        if self._per_owner is not None and owner:
            if self._held.get(owner, 0) >= self._per_owner:
                raise MfpsecError(
                    ErrorCode.BUSY,
                    reason=(f"{self.name}: {self._per_owner} transfers of this owner are running"),
                )
            self._held[owner] = self._held.get(owner, 0) + 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        finally:
            if self._per_owner is not None and owner:
                self._held[owner] -= 1
                if not self._held[owner]:
                    del self._held[owner]

    async def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """asyncio.to_thread on this pool's threads (no owner share)."""
        return await self.run(functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
