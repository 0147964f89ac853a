"""Issue 23 item 12: the default alert rules speak up for evidence in doubt (a broken audit
chain, a torn tail cut off, a stored job that failed authentication), for security
settings changed (roles, the IP filter) and for a SIEM that stopped taking records, and
stay quiet for the daemon's own routine records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mfpsecd.alerts.channels import MailSettings
from mfpsecd.alerts.notifier import Notifier
from mfpsecd.alerts.outbox import AlertOutbox
from mfpsecd.alerts.rules import DEFAULT_RULES
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Record, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock

ADMIN = Subject(origin="panel", user="alice", role="administrator")


async def _open(tmp: Path) -> tuple[Auditor, SqliteState, Notifier, list[Record]]:
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.db")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    written: list[Record] = []
    auditor.add_listener(written.extend)
    notifier = Notifier(
        DEFAULT_RULES,
        MailSettings("localhost", 25, "mfp@example.net", ("admin@example.net",)),
        clock,
        health,
        device="mfp-01",
        outbox=AlertOutbox(state),
    )
    await auditor.start()
    return auditor, state, notifier, written


async def _alerts(state: SqliteState) -> list[tuple[str, str, str]]:
    return [
        (a.rule, a.record.type.value, a.record.object) for a in await AlertOutbox(state).pending()
    ]


@pytest.mark.sfr("FAU_STG_EXT.1")
@pytest.mark.spec("L-3", "L-5")
def test_settings_changes_stored_data_and_the_siem_raise_alerts(tmp_path: Path) -> None:
    async def scenario() -> None:
        auditor, state, notifier, written = await _open(tmp_path)
        # Each of these is an alert ...
        await auditor.record(
            EventType.STORE_INTEGRITY,
            Outcome.FAILURE,
            DAEMON,
            "job-1",
            reason="authentication tag mismatch",
        )
        await auditor.record(
            EventType.ROLE_CHANGE,
            Outcome.SUCCESS,
            ADMIN,
            "bob",
            action="add user",
            role="administrator",
        )
        await auditor.record(
            EventType.NETFILTER_CHANGE,
            Outcome.SUCCESS,
            ADMIN,
            "ip filter",
            change="allow 198.51.100.0/24",
        )
        await auditor.record(
            EventType.NETFILTER_CHANGE,
            Outcome.FAILURE,
            DAEMON,
            "ip filter",
            step="drift",
            phase="drift",
            reason="a rule was deleted",
        )
        await auditor.record(
            EventType.SESSION_FAILURE,
            Outcome.FAILURE,
            DAEMON,
            "siem:soc",
            peer="192.0.2.10:6514",
            reason="TLS handshake: unknown ca",
        )
        # ... and these are not: the daemon's own routine filter work, a mail channel
        # failing (a mail about it could not be sent either), a recovery (its own rule).
        await auditor.record(
            EventType.NETFILTER_CHANGE, Outcome.SUCCESS, DAEMON, "ip filter", step="start"
        )
        await auditor.record(
            EventType.NETFILTER_CHANGE,
            Outcome.SUCCESS,
            DAEMON,
            "ip filter",
            step="ban",
            change="ban 203.0.113.9/32",
        )
        await auditor.record(
            EventType.SESSION_FAILURE,
            Outcome.FAILURE,
            DAEMON,
            "mail",
            peer="localhost:25",
            reason="connection refused",
        )
        await auditor.record(
            EventType.ROLE_CHANGE,
            Outcome.SUCCESS,
            Subject(origin="system"),
            "carol",
            action="recovery requested",
            phase="recovery",
        )
        await notifier.queue(written)
        assert await _alerts(state) == [
            ("stored data tampered", "store.integrity", "job-1"),
            ("role changed", "role.change", "bob"),
            ("ip filter changed", "netfilter.change", "ip filter"),
            ("ip filter failed", "netfilter.change", "ip filter"),
            ("SIEM unreachable", "session.failure", "siem:soc"),
            ("administrator recovery", "role.change", "carol"),
        ]
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())


def test_a_broken_chain_and_a_torn_tail_raise_alerts(tmp_path: Path) -> None:
    async def write_then_stop() -> None:
        auditor, state, _, _ = await _open(tmp_path)
        for i in range(5):
            await auditor.record(EventType.MANAGEMENT, Outcome.SUCCESS, ADMIN, f"setting {i}")
        await auditor.stop()
        await state.close()

    async def start_and_verify() -> list[tuple[str, str, str]]:
        auditor, state, notifier, written = await _open(tmp_path)
        await auditor.verify()  # a person's verify repeats the finding: no second record
        await notifier.queue(written)
        found = [r for r in written if r.type is EventType.AUDIT_INTEGRITY]
        alerts = await _alerts(state)
        await auditor.stop()
        await state.close()
        assert len(found) <= 1
        return alerts

    asyncio.run(write_then_stop())
    (segment,) = sorted((tmp_path / "audit").glob("audit-*.log"))
    data = segment.read_bytes()
    segment.write_bytes(data + data[-40:-10])  # a power cut in the middle of a write
    assert asyncio.run(start_and_verify()) == [
        ("audit log integrity", "audit.tail_repaired", "audit log")
    ]

    data = segment.read_bytes()
    at = data.index(b"setting 2")
    segment.write_bytes(data[:at] + b"SETTING" + data[at + 7 :])  # an edited record
    alerts = asyncio.run(start_and_verify())
    assert [a[:2] for a in alerts][-1:] == [("audit log integrity", "audit.integrity")]
