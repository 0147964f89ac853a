"""The `agentx` alert channel (traps through the device's snmpd): a boot-time command,
which has no AgentX session, keeps such alerts in the outbox for the daemon and still
sends what it can; in the daemon an alert waits for the session without counting as a
failure, and goes out as soon as the session opens (the subagent pokes the notifier).
The channel's real path, through snmpd to snmptrapd, is tests/snmp/test_fleet_daemon.py;
here the sender is the test's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mfpsecd.alerts.channels import AgentxChannel
from mfpsecd.alerts.notifier import NEEDS_DAEMON, Notifier
from mfpsecd.alerts.outbox import Alert, AlertOutbox
from mfpsecd.alerts.rules import Rule
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock

RULES = [Rule("account locked", frozenset({EventType.AUTH_LOCKOUT}))]
ATTACKER = Subject(origin="network", user="eve", address="192.0.2.9")


async def _stack(tmp: Path, agentx: AgentxChannel) -> tuple[Auditor, SqliteState, Notifier]:
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.db")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    notifier = Notifier(
        RULES, None, clock, health, device="mfp", outbox=AlertOutbox(state), agentx=agentx
    )
    auditor.add_listener(notifier.offer)
    await auditor.start()
    return auditor, state, notifier


def test_a_boot_time_command_keeps_agentx_alerts_for_the_daemon(tmp_path: Path) -> None:
    async def scenario() -> None:
        auditor, state, notifier = await _stack(tmp_path, AgentxChannel("/run/agentx", None))
        await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "eve")
        await asyncio.sleep(0)
        await notifier.queue(notifier_backlog(notifier))
        assert await notifier.deliver() == 0  # not a failure: the daemon sends it
        (pending,) = await AlertOutbox(state).pending()
        assert pending.channels == frozenset({"agentx"})
        assert NEEDS_DAEMON in pending.last_error
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())


def notifier_backlog(notifier: Notifier) -> list:  # type: ignore[type-arg]
    out = list(notifier._queue)
    notifier._queue.clear()
    return out


def test_an_alert_waits_for_the_session_and_goes_when_it_opens(tmp_path: Path) -> None:
    sent: list[Alert] = []
    session = {"open": False}

    async def send(alert: Alert) -> None:
        assert session["open"], "sent without a session"
        sent.append(alert)

    async def scenario() -> None:
        channel = AgentxChannel("/run/agentx", send, lambda: session["open"])
        auditor, state, notifier = await _stack(tmp_path, channel)
        task = asyncio.create_task(notifier.run())
        await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "eve")
        for _ in range(200):
            if await AlertOutbox(state).pending():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert sent == [] and len(await AlertOutbox(state).pending()) == 1
        health = notifier._health.get("notify")
        assert health is None or health.state.value != "failed"  # waiting is no failure
        session["open"] = True
        notifier.poke()  # what the subagent does when its session opens
        for _ in range(200):
            if sent:
                break
            await asyncio.sleep(0.01)
        assert [a.rule for a in sent] == ["account locked"]
        assert await AlertOutbox(state).pending() == []
        task.cancel()
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())
