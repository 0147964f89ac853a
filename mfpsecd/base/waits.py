"""Waiting for whichever of several things happens first (a record, a deadline on the
injected clock, a change of settings), the others cancelled cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


async def first_of(*waits: Awaitable[object]) -> int:
    """Wait until one of `waits` completes → its index; the others are cancelled and
    awaited, so nothing is left running. Its exception, if it raised, is raised here."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    first = next(i for i, t in enumerate(tasks) if t in done)
    tasks[first].result()
    return first
