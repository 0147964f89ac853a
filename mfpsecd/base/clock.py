"""Time, injected everywhere (tests drive a fake clock and never sleep), the real
clock, and how the product writes a time (RFC 3339 UTC)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    """Time, injected everywhere: tests drive a fake one and never sleep."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes backwards."""
        ...

    def now(self) -> dt.datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def rfc3339(clock: Clock, timespec: str = "milliseconds") -> str:
    """The clock's UTC time as RFC 3339 (2026-01-01T00:00:00.000Z; audit records use
    timespec="microseconds")."""
    return utc_text(clock.now(), timespec)


def utc_text(t: dt.datetime, timespec: str = "milliseconds") -> str:
    return t.isoformat(timespec=timespec).replace("+00:00", "Z")
