"""The real clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import time


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
