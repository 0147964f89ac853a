"""Time changes are detected and audited (FPT_STM.1, SPEC L-1 "time changes").

The wall clock is compared with the monotonic clock every few seconds: NTP slewing moves
the wall clock by well under a millisecond per second, so a difference beyond the
tolerance is a step (settimeofday, an RTC reset, a manual change) and is recorded with the
time before and after. Audit timestamps stay wall-clock UTC; the record of the step is what
lets an auditor line records up across it.
"""

from __future__ import annotations

import datetime as dt

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, utc_text

log = structlog.get_logger("mfpsecd.time")

PERIOD_S = 5.0
TOLERANCE_S = 2.0


async def watch_time(
    clock: Clock, auditor: Auditor, period_s: float = PERIOD_S, tolerance_s: float = TOLERANCE_S
) -> None:
    """Supervised task."""
    wall, mono = clock.now(), clock.monotonic()
    while True:
        await clock.sleep(period_s)
        now, now_mono = clock.now(), clock.monotonic()
        expected = wall + dt.timedelta(seconds=now_mono - mono)
        step = (now - expected).total_seconds()
        if abs(step) > tolerance_s:
            log.warning("time_changed", step_s=round(step, 3))
            await auditor.record(
                EventType.TIME_CHANGE,
                Outcome.SUCCESS,
                DAEMON,
                "system clock",
                before=utc_text(expected, "microseconds"),
                after=utc_text(now, "microseconds"),
                step_s=round(step, 3),
            )
        wall, mono = now, now_mono  # re-based each time: slewing never accumulates
