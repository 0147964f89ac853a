"""The S-2 event stream's feed (issue 25): the audit log read from a cursor, so that a
client resumes without gaps or repeats, a slow one is told its lag and costs the daemon
nothing, records the log dropped are counted, a quiet stream sends keep-alives, and a
caller who may not read the log sees only the alerts, without details."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator
from pathlib import Path

from mfpsecd.alerts.rules import DEFAULT_RULES, alert_of
from mfpsecd.audit import log_format
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.system.events import BATCH, EventFeed, FeedBatch
from tests.support.fakeclock import FakeClock

ALERTS = functools.partial(alert_of, DEFAULT_RULES)
BOB = Subject(origin="cli", user="bob", role="user", uid=1000)


async def _auditor(tmp: Path, clock: FakeClock) -> tuple[Auditor, SqliteState]:
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, HealthRegistry(clock), state)
    await auditor.start()
    return auditor, state


async def _next(stream: AsyncGenerator[FeedBatch, None]) -> FeedBatch:
    return await asyncio.wait_for(anext(stream), 5)


def test_a_client_resumes_where_it_left_off_and_the_panel_sees_only_alerts(
    tmp_path: Path,
) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        auditor, state = await _auditor(tmp_path, clock)
        start = auditor.last_seq  # audit.start
        full = EventFeed(auditor, ALERTS, clock).follow(-1, everything=lambda: True, keepalive_s=30)
        first = await _next(full)  # at once: where the stream starts
        assert (first.keepalive, first.last_seq, first.records) == (True, start, [])

        await auditor.record(
            EventType.AUTH_LOGIN, Outcome.FAILURE, BOB, "bob", method="password", reason="wrong"
        )
        await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, BOB, "bob", failures=5)
        await auditor.record(
            EventType.POSTURE_CHANGE, Outcome.FAILURE, DAEMON, "ip-filter", state="off"
        )
        got: list[tuple[int, str]] = []
        while len(got) < 3:
            b = await _next(full)
            got += [(r.seq, a) for r, a in b.records]
        assert got == [
            (start + 1, ""),
            (start + 2, "account locked"),
            (start + 3, "security posture"),
        ]

        # The panel, reconnecting after the first of them: only the alerts, in order.
        panel = EventFeed(auditor, ALERTS, clock).follow(
            start + 1, everything=lambda: False, keepalive_s=30
        )
        assert (await _next(panel)).last_seq == start + 1
        b = await _next(panel)
        assert [(r.seq, r.type, a) for r, a in b.records] == [
            (start + 2, EventType.AUTH_LOCKOUT, "account locked"),
            (start + 3, EventType.POSTURE_CHANGE, "security posture"),
        ]
        assert (b.last_seq, b.missed, b.behind) == (start + 3, 0, 0)

        # Nothing happens: a keep-alive after keepalive_s on the injected clock.
        pending = asyncio.ensure_future(_next(panel))
        while not clock.sleepers:  # the stream is waiting, on the clock among others
            await asyncio.sleep(0.001)
        await clock.advance(31)
        quiet = await pending
        assert (quiet.keepalive, quiet.records, quiet.last_seq) == (True, [], start + 3)
        await panel.aclose()
        await full.aclose()
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())


def test_a_slow_client_is_told_its_lag_and_reads_everything_in_order(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        auditor, state = await _auditor(tmp_path, clock)
        start = auditor.last_seq
        stream = EventFeed(auditor, ALERTS, clock).follow(
            start, everything=lambda: True, keepalive_s=30
        )
        assert (await _next(stream)).behind == 0
        # The client does not read while 250 records are written: the daemon keeps
        # nothing for it (the log is its buffer) and writes on at full speed.
        for i in range(250):
            await auditor.record(EventType.MANAGEMENT, Outcome.SUCCESS, BOB, f"setting {i}")
        seqs: list[int] = []
        lags: list[int] = []
        while len(seqs) < 250:
            b = await _next(stream)
            assert len(b.records) <= BATCH
            seqs += [r.seq for r, _ in b.records]
            lags.append(b.behind)
        assert seqs == list(range(start + 1, start + 251))  # no gap, no repeat
        assert lags[0] > 0 and lags[-1] == 0
        await stream.aclose()
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())


class _TrimmedLog:
    """A log whose records below `oldest` are gone (retention, or a full log's policy)."""

    def __init__(self, records: list[bytes], oldest: int) -> None:
        self._records = records
        self._oldest = oldest

    @property
    def last_seq(self) -> int:
        return log_format.decode(self._records[-1]).seq

    async def records_after(self, seq: int, limit: int) -> list[bytes]:
        out = [r for r in self._records if log_format.decode(r).seq > max(seq, self._oldest - 1)]
        return out[:limit]

    async def wait_beyond(self, seq: int) -> None:
        await asyncio.Event().wait()


def test_records_the_log_no_longer_holds_are_counted_as_missed(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        auditor, state = await _auditor(tmp_path, clock)
        for i in range(9):
            await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, BOB, f"user{i}")
        everything = await auditor.records_after(0, 100)
        await auditor.stop()
        await state.close()
        newest = log_format.decode(everything[-1]).seq
        trimmed = _TrimmedLog(everything, oldest=newest - 2)  # only the last 3 are left
        stream = EventFeed(trimmed, ALERTS, clock).follow(
            2, everything=lambda: False, keepalive_s=30
        )
        await _next(stream)
        b = await _next(stream)
        assert b.missed == newest - 3 - 2  # seq 3 .. newest-3 are gone
        assert [r.seq for r, _ in b.records] == [newest - 2, newest - 1, newest]
        await stream.aclose()

    asyncio.run(scenario())
