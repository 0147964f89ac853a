"""FTP_ITC.1 / FAU_GEN.1 (issue 23 items 4, 5): failed sessions are audited as
session.failure, counted rather than written per attempt; an alert nobody takes expires,
audited. Real peers: a TLS server with a certificate the device does not trust, a mail
port nothing listens on."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from mfpsecd.alerts.channels import MailSettings
from mfpsecd.alerts.notifier import Notifier
from mfpsecd.alerts.outbox import AlertOutbox
from mfpsecd.alerts.rules import DEFAULT_RULES
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.forwarder import make_forwarders
from mfpsecd.audit.log_format import Outcome, Record, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.audit.session_failures import SessionFailures
from mfpsecd.base.config.schema import AuditForwardSection
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock, settle
from tests.support.pki import make_pki
from tests.support.rsyslog import free_port

ATTACKER = Subject(origin="network", user="admin", address="203.0.113.9")


async def _open(tmp: Path) -> tuple[FakeClock, HealthRegistry, Auditor, SqliteState]:
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.db")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    return clock, health, auditor, state


async def _failures(auditor: Auditor) -> list[Record]:
    return await auditor.query(AuditQuery(types=frozenset({EventType.SESSION_FAILURE}), limit=0))


async def _until(cond: Callable[[], Awaitable[bool]], *, rounds: int = 500) -> None:
    for _ in range(rounds):
        if await cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def _advance_until(
    clock: FakeClock, cond: Callable[[], Awaitable[bool]], *, limit_s: int
) -> None:
    for _ in range(limit_s):
        if await cond():
            return
        await clock.advance(1)
        await asyncio.sleep(0.005)
    await _until(cond)


def test_failed_mail_deliveries_are_audited_once_then_counted(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: every delivery fails

    async def scenario() -> None:
        clock, health, auditor, state = await _open(tmp_path)
        failures = SessionFailures(auditor, clock, interval_s=300)
        outbox = AlertOutbox(state)
        notifier = Notifier(
            DEFAULT_RULES,
            MailSettings("localhost", port, "mfp@example.net", ("admin@example.net",)),
            clock,
            health,
            device="mfp-01",
            outbox=outbox,
            failures=failures,
        )
        auditor.add_listener(notifier.offer)
        tasks = [asyncio.create_task(notifier.run()), asyncio.create_task(failures.run())]
        await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")

        async def recorded(n: int) -> bool:
            return len(await _failures(auditor)) >= n

        await _until(lambda: recorded(1))
        (first,) = await _failures(auditor)
        assert (first.object, first.outcome) == ("mail", Outcome.FAILURE)
        assert first.details["peer"] == f"localhost:{port}" and first.details["count"] == 1
        assert "SMTPConnect" in str(first.details["reason"])

        async def attempted(n: int) -> bool:
            return [a.attempts for a in await outbox.pending()] == [n]

        # The outbox retries after 10, 20, 40, 80 s: each fails again. Time moves a second
        # at a time, so a delivery that takes long in real time only shifts the next one.
        for n in range(2, 6):
            await _advance_until(clock, lambda: attempted(n), limit_s=90)  # noqa: B023
        assert len(await _failures(auditor)) == 1  # counted, not written per attempt
        await _advance_until(clock, lambda: recorded(2), limit_s=160)  # the interval ends
        summary = (await _failures(auditor))[1]
        assert summary.details["count"] == 4 and str(summary.details["first"]) > first.time
        for t in tasks:
            t.cancel()
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())


def test_an_alert_no_channel_takes_expires_and_that_is_audited(tmp_path: Path) -> None:
    port = free_port()

    async def scenario() -> None:
        clock, health, auditor, state = await _open(tmp_path)
        failures = SessionFailures(auditor, clock)
        outbox = AlertOutbox(state)
        notifier = Notifier(
            DEFAULT_RULES,
            MailSettings("localhost", port, "mfp@example.net", ("admin@example.net",)),
            clock,
            health,
            device="mfp-01",
            outbox=outbox,
            failures=failures,
            expire_s=3600,
        )
        await notifier.queue([await _lockout(auditor)])
        assert await notifier.deliver() == 1 and len(await outbox.pending()) == 1
        await clock.advance(3000)
        assert await notifier.deliver() == 1  # not expired yet: tried again
        await clock.advance(601)
        assert await notifier.deliver() == 0 and await outbox.pending() == []
        await failures.flush()
        reasons = [str(r.details["reason"]) for r in await _failures(auditor)]
        assert "alert account locked expired undelivered after 2 attempt(s)" in reasons
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())


async def _lockout(auditor: Auditor) -> Record:
    got: list[Record] = []
    auditor.add_listener(got.extend)
    await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")
    await settle()
    return next(r for r in got if r.type is EventType.AUTH_LOCKOUT)


def test_a_siem_whose_certificate_is_not_trusted_is_audited(tmp_path: Path) -> None:
    served = make_pki(tmp_path / "siem")  # the SIEM's certificate, from its own CA
    trusted = make_pki(tmp_path / "ours")  # the CA the device is configured with

    async def scenario() -> None:
        clock, health, auditor, state = await _open(tmp_path)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(served.cert, served.key)
        handshakes = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal handshakes
            handshakes += 1
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        failures = SessionFailures(auditor, clock)
        (fwd,) = make_forwarders(
            [
                AuditForwardSection(
                    name="siem",
                    host="127.0.0.1",
                    port=port,
                    ca_file=str(trusted.ca),
                    server_name="localhost",
                )
            ],
            auditor,
            state,
            clock,
            health,
            hostname="mfp-01",
            version="0",
            failures=failures,
        )
        tasks = [asyncio.create_task(fwd.run()), asyncio.create_task(failures.run())]

        async def recorded() -> bool:
            return bool(await _failures(auditor))

        await _until(recorded)
        (record,) = await _failures(auditor)
        assert record.object == "siem:siem" and record.details["peer"] == f"127.0.0.1:{port}"
        assert str(record.details["reason"]).startswith("TLS handshake: ")
        assert "certificate" in str(record.details["reason"])
        assert handshakes == 0  # nothing was ever sent to it
        for t in tasks:
            t.cancel()
        server.close()
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())
