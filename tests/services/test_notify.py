"""Notifications by e-mail (STARTTLS to a real SMTP server, aiosmtpd): thresholds, and a
burst of 1,000 triggering events producing a bounded number of mails."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from aiosmtpd.controller import Controller

from mfpsecd.api.auditlog import EventType, Outcome, Subject
from mfpsecd.backends.audit_file import AuditFile
from mfpsecd.services.audit import Auditor
from mfpsecd.services.health import HealthRegistry
from mfpsecd.services.notify import MailSettings, Notifier, Rule
from tests.support.fakeclock import FakeClock, settle
from tests.support.pki import make_pki
from tests.support.rsyslog import free_port

ATTACKER = Subject(origin="network", user="admin", address="203.0.113.9")


class Sink:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        assert session.ssl is not None, "mail must arrive over STARTTLS"
        self.messages.append(envelope.content.decode())
        return "250 OK"


def test_lockout_burst_sends_a_bounded_number_of_mails(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.cert, pki.key)
    sink = Sink()
    port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=port, tls_context=tls,
                      require_starttls=True, server_hostname="localhost")
    smtp.start()
    try:
        async def scenario() -> None:
            clock = FakeClock()
            health = HealthRegistry(clock)
            auditor = Auditor(AuditFile(tmp_path / "audit"), clock, health)
            await auditor.start()
            notifier = Notifier(
                [Rule("account locked", frozenset({EventType.AUTH_LOCKOUT}),
                      min_interval_s=300),
                 Rule("password attack", frozenset({EventType.AUTH_LOGIN}),
                      failures_only=True, threshold=3, window_s=60, min_interval_s=300)],
                MailSettings("localhost", port, "mfp@example.net", ("admin@example.net",),
                             ca_file=str(pki.ca)),
                clock, health, device="mfp-01")
            auditor.add_listener(notifier.offer)
            task = asyncio.create_task(notifier.run())

            async def until(n: int) -> None:
                for _ in range(500):
                    if len(sink.messages) >= n:
                        return
                    await asyncio.sleep(0.01)
                raise AssertionError(f"{len(sink.messages)} mails, expected {n}")

            # Two failed logins: under the threshold. The third fires.
            for _ in range(2):
                await auditor.record(EventType.AUTH_LOGIN, Outcome.FAILURE, ATTACKER, "admin")
            await settle()
            await asyncio.sleep(0.2)
            assert sink.messages == []
            await auditor.record(EventType.AUTH_LOGIN, Outcome.FAILURE, ATTACKER, "admin")
            await until(1)
            assert "password attack: auth.login failure" in sink.messages[0]
            assert "203.0.113.9" in sink.messages[0]

            await asyncio.gather(*(auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS,
                                                  ATTACKER, "admin") for _ in range(1000)))
            await until(2)
            await asyncio.sleep(0.3)
            assert len(sink.messages) == 2  # 1,000 lockouts, one mail
            await clock.advance(301)
            await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")
            await until(3)
            assert "999 more matching event(s)" in sink.messages[2]
            assert notifier.sent == 3
            task.cancel()
            await auditor.stop()

        asyncio.run(scenario())
    finally:
        smtp.stop()
