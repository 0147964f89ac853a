"""The seed's outcome table (V-2) over every source and option, clamd's VERSION reply,
and the engine's state as status and the posture read it (a database too old, an engine
that cannot be reached) with the injected clock."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.service import Auditor
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.scan.backends.clamd import parse_version
from mfpsecd.scan.model.outcome import FailurePolicy, JobAction, RxOption, Source, job_action
from mfpsecd.scan.ports import EngineInfo, ScanStream
from mfpsecd.scan.posture import virus_scan
from mfpsecd.scan.service import ScanSettings, VirusScan
from tests.support.aio import sync
from tests.support.fakeclock import FakeClock

RX = [Source.PRINT, Source.FAX_RECEIVED, Source.EMAIL_RECEIVED]
TX = [Source.SCAN_TO_SEND, Source.FAX_TO_SEND]


@pytest.mark.parametrize(("source", "option"), list(itertools.product(Source, RxOption)))
def test_the_outcome_table(source: Source, option: RxOption) -> None:
    got = job_action(source, option)
    if source in TX or option is RxOption.DELETE_ALL:
        assert got is JobAction.DELETE
    elif option is RxOption.CONTINUE:
        assert got is JobAction.EXECUTE
    else:  # Delete: all but FAX and e-mail received
        assert got is (JobAction.DELETE if source is Source.PRINT else JobAction.EXECUTE)
    assert source.received == (source in RX)


def test_clamd_version_replies() -> None:
    dated = parse_version("ClamAV 1.4.6/27480/Sat Dec  5 08:26:02 2026")
    assert dated == EngineInfo(
        "ClamAV 1.4.6", "27480", dt.datetime(2026, 12, 5, 8, 26, 2, tzinfo=dt.UTC).timestamp()
    )
    assert parse_version("ClamAV 1.4.6") == EngineInfo("ClamAV 1.4.6", "", None)
    assert parse_version("ClamAV 1.4.6/27480/garbage").database_date is None


class RecordedEngine:
    """An engine that answers VERSION as recorded from clamd (the stream is not used)."""

    def __init__(self, reply: str | None) -> None:
        self.reply = reply

    def info(self) -> EngineInfo:
        if self.reply is None:
            raise ConnectionRefusedError(111, "Connection refused")
        return parse_version(self.reply)

    def stream(self) -> ScanStream:
        raise AssertionError("not scanned here")


@sync
async def test_a_database_too_old_or_an_engine_away_turns_the_scan_off(tmp_path) -> None:
    clock = FakeClock(dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC))
    health = HealthRegistry(clock)
    auditor = Auditor(AuditFile(tmp_path / "audit"), clock, health)
    engine = RecordedEngine("ClamAV 1.4.6/27480/Sat Dec  5 08:26:02 2026")
    scan = VirusScan(
        engine,
        ScanSettings(
            "clamd at /run/clamav/clamd.ctl", RxOption.DELETE, FailurePolicy.REFUSE, 7 * 86400.0
        ),
        clock=clock,
        health=health,
        auditor=auditor,
    )
    await scan.check()
    assert scan.state == (True, "ClamAV 1.4.6, database 27480 of 2026-12-05T08:26:02Z")
    item = virus_scan(scan)
    assert item.state.value == "on" and "RX jobs with a virus: delete" in item.setting
    await clock.advance(7 * 86400.0)  # a week without an update
    await scan.check()
    usable, why = scan.state
    assert not usable and "older than 7 days" in why
    assert health.get("virus-scan").state is HealthState.FAILED  # type: ignore[union-attr]
    engine.reply = None
    await scan.check()
    assert "cannot be reached: Connection refused" in scan.state[1]
    assert virus_scan(None).state.value == "off"


@sync
async def test_a_database_date_that_cannot_be_read_is_a_failure(tmp_path) -> None:
    clock = FakeClock()
    health = HealthRegistry(clock)
    scan = VirusScan(
        RecordedEngine("ClamAV 1.4.6/27480/sometime last week"),
        ScanSettings("clamd", RxOption.DELETE, FailurePolicy.REFUSE, 7 * 86400.0),
        clock=clock,
        health=health,
        auditor=Auditor(AuditFile(tmp_path / "audit"), clock, health),
    )
    await scan.check()
    assert scan.state == (False, "ClamAV 1.4.6: the database's date cannot be read")
