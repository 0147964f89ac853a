"""Notifications by e-mail (STARTTLS to a real SMTP server, aiosmtpd): thresholds, and a
burst of 1,000 triggering events producing a bounded number of mails."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from mfpsecd.alerts.channels import MailSettings, SnmpSettings
from mfpsecd.alerts.notifier import Notifier
from mfpsecd.alerts.outbox import AlertOutbox
from mfpsecd.alerts.rules import DEFAULT_RULES, Rule
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Record, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock, settle
from tests.support.pki import make_pki
from tests.support.rsyslog import free_port
from tests.support.smtp_sink import MailSink, starttls_sink
from tests.support.snmp_agents import Snmptrapd, V3User

ATTACKER = Subject(origin="network", user="admin", address="203.0.113.9")


async def _auditor(tmp: Path) -> tuple[FakeClock, HealthRegistry, Auditor]:
    clock = FakeClock()
    health = HealthRegistry(clock)
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health)
    await auditor.start()
    return clock, health, auditor


async def _state(tmp: Path) -> SqliteState:
    state = SqliteState(tmp / "state.db")
    await state.open()
    return state


async def _smtp_secret(name: str) -> SecretBytes:
    assert name == "smtp-password"
    return SecretBytes(bytearray(b"Smtp-pass-2026"))


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
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (b"mfp-01", b"Smtp-pass-2026")
        return AuthResult(success=ok)

    smtp = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        server_hostname="localhost",
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    smtp.start()
    try:

        async def scenario() -> None:
            clock, health, auditor = await _auditor(tmp_path)
            state = await _state(tmp_path)
            notifier = Notifier(
                [
                    Rule("account locked", frozenset({EventType.AUTH_LOCKOUT}), min_interval_s=300),
                    Rule(
                        "password attack",
                        frozenset({EventType.AUTH_LOGIN}),
                        failures_only=True,
                        threshold=3,
                        window_s=60,
                        min_interval_s=300,
                    ),
                ],
                MailSettings(
                    "localhost",
                    port,
                    "mfp@example.net",
                    ("admin@example.net",),
                    ca_file=str(pki.ca),
                    username="mfp-01",
                    password_secret="smtp-password",
                ),
                clock,
                health,
                device="mfp-01",
                outbox=AlertOutbox(state),
                secrets=_smtp_secret,
            )
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

            await asyncio.gather(
                *(
                    auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")
                    for _ in range(1000)
                )
            )
            await until(2)
            for _ in range(500):  # the whole burst matched before (fake) time moves on
                if notifier.backlog == 0:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert len(sink.messages) == 2  # 1,000 lockouts, one mail
            await clock.advance(301)
            await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")
            await until(3)
            assert "999 more matching event(s)" in sink.messages[2]
            # The sink holds the mail once DATA ends; the notifier counts it after QUIT.
            for _ in range(500):
                if notifier.sent == 3:
                    break
                await asyncio.sleep(0.01)
            assert notifier.sent == 3
            assert set(logins) == {(b"mfp-01", b"Smtp-pass-2026")}  # AUTH after STARTTLS
            task.cancel()
            await auditor.stop()
            await state.close()

        asyncio.run(scenario())
    finally:
        smtp.stop()


ENGINE = "80001f8880c0ffee0000000001"
KEYS = {"snmp-auth": b"auth-pass-phrase-1", "snmp-priv": b"priv-pass-phrase-1"}


@pytest.mark.skipif(
    shutil.which("snmptrapd") is None, reason="snmptrapd is not installed (make setup installs it)"
)
@pytest.mark.parametrize(
    ("auth", "priv", "net_snmp"),
    [("sha256", "aes128", ("SHA-256", "AES")), ("sha512", "aes256", ("SHA-512", "AES-256"))],
)
def test_lockout_trap_snmpv3_authpriv_reaches_snmptrapd(
    tmp_path: Path, auth: str, priv: str, net_snmp: tuple[str, str]
) -> None:
    """The direct channel (no master agent): the rule's MFPSEC-MIB notification, with
    HMAC-SHA-2 and AES keys, decoded by name with the MIB loaded."""
    user = V3User("mfpsec", KEYS["snmp-auth"].decode(), KEYS["snmp-priv"].decode(), *net_snmp)
    trapd = Snmptrapd(tmp_path / "trapd", user, engine=f"0x{ENGINE}")
    port = trapd.port
    try:

        async def secrets(name: str) -> SecretBytes:
            return SecretBytes(bytearray(KEYS[name]))

        async def scenario() -> None:
            clock, health, auditor = await _auditor(tmp_path)
            state = await _state(tmp_path)
            notifier = Notifier(
                [Rule("account locked", frozenset({EventType.AUTH_LOCKOUT}), min_interval_s=300)],
                None,
                clock,
                health,
                device="mfp-01",
                outbox=AlertOutbox(state),
                snmp=SnmpSettings(
                    "127.0.0.1",
                    port,
                    "v3",
                    user="mfpsec",
                    engine_id=ENGINE,
                    auth_protocol=auth,
                    priv_protocol=priv,
                    auth_secret="snmp-auth",
                    priv_secret="snmp-priv",
                ),
                secrets=secrets,
            )
            auditor.add_listener(notifier.offer)
            task = asyncio.create_task(notifier.run())
            await asyncio.gather(
                *(
                    auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")
                    for _ in range(1000)
                )
            )
            for _ in range(500):  # the burst is matched before (fake) time moves on
                if notifier.traps >= 1 and notifier.backlog == 0:
                    break
                await asyncio.sleep(0.01)
            await clock.advance(301)
            await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")
            for _ in range(500):
                if notifier.traps >= 2:
                    break
                await asyncio.sleep(0.01)
            assert notifier.traps == 2  # 1,001 lockouts, two traps
            task.cancel()
            await auditor.stop()
            await state.close()

        asyncio.run(scenario())
        deadline = time.monotonic() + 10
        while (text := trapd.log.read_text()).count("MFPSEC-MIB::mfpsecAccountLocked") < 2:
            assert time.monotonic() < deadline, text
            time.sleep(0.05)
        assert "MFPSEC-MIB::mfpsecAlertEventType.0 = STRING: auth.lockout" in text
        assert "MFPSEC-MIB::mfpsecAlertSubject.0 = STRING: admin@203.0.113.9" in text
        assert "MFPSEC-MIB::mfpsecAlertDevice.0 = STRING: mfp-01" in text
        assert "MFPSEC-MIB::mfpsecAlertSuppressed.0 = Gauge32: 999" in text  # the summary
    finally:
        trapd.stop()


def test_a_failed_sanitization_is_mailed_a_refused_start_is_not(tmp_path: Path) -> None:
    """The default rule: a purge the read-back failed, or a device that stopped answering
    (DeviceStuck), reaches the administrator; a refused start does not."""

    async def scenario(sink: MailSink) -> None:
        clock, health, auditor = await _auditor(tmp_path)
        state = await _state(tmp_path)
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
        engineer = Subject(origin="cli", user="ce1", role="service")
        await auditor.record(
            EventType.SANITIZE,
            Outcome.FAILURE,
            engineer,
            "nvme0",
            phase="start",
            error="io.mfpsecd.Wipe.TargetRefused",
        )
        await auditor.record(
            EventType.SANITIZE,
            Outcome.FAILURE,
            engineer,
            "nvme0-20260101T000000-ab12",
            phase="result",
            error="io.mfpsecd.Wipe.DeviceStuck target=nvme0 seconds=3601",
        )
        for _ in range(500):
            if sink.messages:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert len(sink.messages) == 1, sink.messages
        assert "sanitization failed: sanitize failure" in sink.messages[0]
        assert "nvme0-20260101T000000-ab12" in sink.messages[0]
        task.cancel()
        await auditor.stop()
        await state.close()

    with starttls_sink(tmp_path) as sink:
        asyncio.run(scenario(sink))


def test_an_alert_outlives_a_mail_outage_and_a_restart_and_goes_out_once(tmp_path: Path) -> None:
    """The mail server is down when the lockout happens: the alert waits in the outbox,
    is retried, survives a restart of the notifier, and is mailed exactly once."""
    port = free_port()
    # starttls_sink(tmp_path / "sink") makes its PKI again at the same place, later.
    ca = make_pki(tmp_path / "sink" / "pki").ca

    def notifier_on(state: SqliteState, clock: FakeClock, health: HealthRegistry) -> Notifier:
        return Notifier(
            DEFAULT_RULES,
            MailSettings(
                "localhost", port, "mfp@example.net", ("admin@example.net",), ca_file=str(ca)
            ),
            clock,
            health,
            device="mfp-01",
            outbox=AlertOutbox(state),
        )

    async def until(cond: Callable[[], Awaitable[bool]]) -> None:
        for _ in range(1000):
            if await cond():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached")

    async def outage() -> None:  # the server is down: nothing is lost
        clock, health, auditor = await _auditor(tmp_path)
        state = await _state(tmp_path)
        notifier = notifier_on(state, clock, health)
        auditor.add_listener(notifier.offer)
        task = asyncio.create_task(notifier.run())
        await auditor.record(EventType.AUTH_LOCKOUT, Outcome.SUCCESS, ATTACKER, "admin")
        outbox = AlertOutbox(state)

        async def tried(n: int) -> bool:
            waiting = await outbox.pending()
            return bool(waiting) and waiting[0].attempts >= n

        await until(lambda: tried(1))
        waiting = await outbox.pending()
        assert [(a.rule, a.channels) for a in waiting] == [("account locked", frozenset({"mail"}))]
        assert waiting[0].last_error == "mail: SMTPConnectError"
        component = health.get("notify")
        assert component is not None and component.state is HealthState.FAILED
        await clock.advance(10)  # the first retry: still down
        await until(lambda: tried(2))
        task.cancel()  # the daemon stops (a power cut) with the alert unsent
        await auditor.stop()
        await state.close()

    async def start_again() -> int:
        clock = FakeClock()
        state = await _state(tmp_path)
        notifier = notifier_on(state, clock, HealthRegistry(clock))
        task = asyncio.create_task(notifier.run())

        async def empty() -> bool:
            return not await AlertOutbox(state).pending()

        await until(empty)
        await asyncio.sleep(0.3)
        task.cancel()
        await state.close()
        return notifier.sent

    asyncio.run(outage())
    with starttls_sink(tmp_path / "sink", port) as sink:
        assert asyncio.run(start_again()) == 1  # the next start sends what waited
        assert len(sink.messages) == 1
        assert "account locked: auth.lockout success" in sink.messages[0]
        assert "203.0.113.9" in sink.messages[0]
        assert asyncio.run(start_again()) == 0  # and the one after sends nothing again
        assert len(sink.messages) == 1


def test_the_default_rules_alert_every_administrator_recovery(tmp_path: Path) -> None:
    """Each request and each completion is an alert (no rate limit holds the second)."""

    async def scenario() -> None:
        clock, health, auditor = await _auditor(tmp_path)
        state = await _state(tmp_path)
        notifier = Notifier(
            DEFAULT_RULES,
            MailSettings("localhost", 25, "mfp@example.net", ("admin@example.net",)),
            clock,
            health,
            device="mfp-01",
            outbox=AlertOutbox(state),
        )
        written: list[Record] = []
        auditor.add_listener(written.extend)
        root = Subject(origin="system", uid=0)
        for action in ("recovery requested", "administrator recovered"):
            await auditor.record(
                EventType.ROLE_CHANGE,
                Outcome.SUCCESS,
                root,
                "alice",
                action=action,
                phase="recovery",
            )
        await auditor.record(EventType.ROLE_CHANGE, Outcome.SUCCESS, root, "bob", action="add user")
        assert await notifier.queue(written) == 3
        kept = await AlertOutbox(state).pending()
        assert [(a.rule, a.record.details["action"]) for a in kept] == [
            ("administrator recovery", "recovery requested"),
            ("administrator recovery", "administrator recovered"),
            ("role changed", "add user"),
        ]  # its own rule, not a recovery
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())
