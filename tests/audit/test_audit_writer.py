"""L-3: a record forwarded (or replayed after a restart) carries the PROCID of the process
that wrote it, not of the one forwarding it: each process names its pid in its first
record, and the auditor finds the writer of any record from those marks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.health import HealthRegistry
from tests.support.fakeclock import FakeClock

WHO = Subject(origin="panel", user="alice")


async def _session(directory: Path, pid: int, records: int) -> int:
    """One process's life on the log → the seq of the last record it wrote."""
    clock = FakeClock()
    auditor = Auditor(AuditFile(directory), clock, HealthRegistry(clock), writer_pid=pid)
    await auditor.start()
    for i in range(records):
        await auditor.record(EventType.MANAGEMENT, Outcome.SUCCESS, WHO, f"setting {i}")
    await auditor.stop()
    return auditor.last_seq


@pytest.mark.sfr("FAU_GEN.2")
@pytest.mark.spec("A-10", "L-1")
def test_each_record_names_the_process_that_wrote_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        log = tmp_path / "audit"
        end1 = await _session(log, 1111, 3)
        end2 = await _session(log, -1, 2)  # a tool that names no pid
        end3 = await _session(log, 3333, 1)
        first, second, third = (
            range(1, end1 + 1),
            range(end1 + 1, end2 + 1),
            range(end2 + 1, end3 + 1),
        )
        assert len(first) == len(second) + 1 == len(third) + 2 == 5  # start, n, stop
        clock = FakeClock()
        reader = Auditor(AuditFile(log), clock, HealthRegistry(clock), writer_pid=4444)
        await reader.start()  # a fourth process, forwarding what the others wrote
        records = await reader.query(AuditQuery(limit=0))
        starts = [r for r in records if r.type is EventType.AUDIT_START]
        assert [r.details.get("pid") for r in starts] == [1111, None, 3333, 4444]
        assert {reader.writer_of(s) for s in first} == {1111}
        assert {reader.writer_of(s) for s in second} == {-1}
        assert {reader.writer_of(s) for s in third} == {3333}
        assert reader.writer_of(records[-1].seq) == 4444
        await reader.stop()

    asyncio.run(scenario())
