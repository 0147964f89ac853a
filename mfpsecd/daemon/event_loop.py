"""The daemon's event loop: uvloop where it is installed, else asyncio's own.

uvloop halves the per-call cost of the IPC hot path (bench/results/ipc.md), but it is an
optional dependency: it has no wheel for 32-bit ARM, and a controller image may leave it
out. asyncio's loop serves the same API; only throughput differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop  # noqa: PLC0415 (optional: absent on armv7)
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop
