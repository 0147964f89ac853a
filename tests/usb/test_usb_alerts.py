"""U-3: a USB device the policy refuses raises the default "USB device refused" alert by
mail (a real STARTTLS SMTP server), at most once an hour for each device; an
administrator's own Block raises none."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mfpsecd.alerts.channels import MailSettings
from mfpsecd.alerts.notifier import Notifier
from mfpsecd.alerts.outbox import AlertOutbox
from mfpsecd.alerts.rules import DEFAULT_RULES
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock
from tests.support.smtp_sink import MailSink, starttls_sink

ADMIN = Subject(origin="cli", user="admin", role="administrator")


def test_a_refused_device_is_alerted_once_an_hour_per_device(tmp_path: Path) -> None:
    async def scenario(sink: MailSink) -> None:
        clock = FakeClock()
        health = HealthRegistry(clock)
        state = SqliteState(tmp_path / "state.db")
        await state.open()
        auditor = Auditor(AuditFile(tmp_path / "audit"), clock, health)
        await auditor.start()
        notifier = Notifier(
            DEFAULT_RULES,
            MailSettings(
                "localhost",
                sink.port,
                "mfp@example.net",
                ("admin@example.net",),
                ca_file=str(sink.ca),
            ),
            clock,
            health,
            device="mfp-01",
            outbox=AlertOutbox(state),
        )
        auditor.add_listener(notifier.offer)
        task = asyncio.create_task(notifier.run())

        async def refused(
            identity: str, subject: Subject = DAEMON, phase: str = "connected"
        ) -> None:
            await auditor.record(
                EventType.USB_DEVICE,
                Outcome.FAILURE,
                subject,
                f"usb:{identity}",
                phase=phase,
                allowed=False,
                device="1-4",
                port="front",
                reason="mixes hid (allowed) with network (refused on port front)",
            )

        async def mails(n: int) -> list[str]:
            for _ in range(500):
                if len(sink.messages) >= n:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            return sink.messages

        gadget, other = "1d6b:0104:0123456789", "1d6b:0104:9876543210"
        for _ in range(5):  # plugged in again and again
            await refused(gadget)
        await refused(other)  # another device: an alert of its own
        await refused("413c:2113", ADMIN, "administrator")  # an administrator's Block
        got = await mails(2)
        assert len(got) == 2, got
        assert all("USB device refused" in m for m in got)
        assert f"usb:{gadget}" in got[0] and f"usb:{other}" in got[1]
        await clock.advance(1800)
        await refused(gadget)
        assert len(await mails(3)) == 2  # within the hour: counted, not sent
        await clock.advance(1801)
        await refused(gadget)
        got = await mails(3)
        assert len(got) == 3 and f"usb:{gadget}" in got[2]
        task.cancel()
        await auditor.stop()
        await state.close()

    with starttls_sink(tmp_path) as sink:
        asyncio.run(scenario(sink))
