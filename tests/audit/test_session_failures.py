"""FTP_ITC.1 / FAU_GEN.1 (issue 23 items 4, 5): failed sessions are audited as
session.failure, counted rather than written per attempt; an alert nobody takes expires,
audited. Real peers: a TLS server with a certificate the device does not trust, a mail
port nothing listens on."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mfpsecd.alerts.channels import MailSettings
from mfpsecd.alerts.notifier import Notifier
from mfpsecd.alerts.outbox import AlertOutbox
from mfpsecd.alerts.rules import DEFAULT_RULES
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.forwarder import Forwarder, make_forwarders
from mfpsecd.audit.log_format import Outcome, Record, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.audit.session_failures import SessionFailures
from mfpsecd.base.config.schema import AuditForwardSection
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock, settle
from tests.support.pki import Ca, make_ca, make_pki
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


@pytest.mark.sfr("FAU_GEN.1", "FTP_ITC.1")
@pytest.mark.spec("L-1", "L-3")
def _forwarder(
    port: int,
    ca_file: str,
    auditor: Auditor,
    state: SqliteState,
    clock: FakeClock,
    health: HealthRegistry,
    failures: SessionFailures,
) -> Forwarder:
    """A TLS destination "siem" on the loopback port, checked against ca_file as
    "localhost"."""
    (fwd,) = make_forwarders(
        [
            AuditForwardSection(
                name="siem", host="127.0.0.1", port=port, ca_file=ca_file, server_name="localhost"
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
    return fwd


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
        fwd = _forwarder(port, str(trusted.ca), auditor, state, clock, health, failures)
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


def _server_cert(
    directory: Path,
    ca: Ca,
    *,
    host: str = "localhost",
    days: tuple[int, int] = (-1, 2),
    rsa_key: bool = False,
) -> tuple[Path, Path]:
    """A SIEM's server certificate from `ca`: for another host, expired, or on an RSA key."""
    now = dt.datetime.now(dt.UTC)
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _weak_server(ctx: ssl.SSLContext, *, versions: bool = False, rsa_only: bool = False) -> None:
    # What a misconfigured or downgrading collector offers: old protocol versions only,
    # or TLS 1.2 with RSA key transport only (no forward secrecy).
    ctx.set_ciphers("ALL:@SECLEVEL=0" if versions else "kRSA:@SECLEVEL=0")
    if versions:
        with warnings.catch_warnings():  # deprecated, which is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    if rsa_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2


@pytest.mark.sfr("FTP_ITC.1", "FCS_CKM.2")
@pytest.mark.spec("L-3")
@pytest.mark.parametrize(
    "collector",
    [
        "another host's certificate",
        "an expired certificate",
        "TLS 1.0-1.1 only",
        "RSA key transport only",
    ],
)
def test_the_device_refuses_a_collector_it_cannot_trust_and_sends_it_nothing(
    tmp_path: Path, collector: str
) -> None:
    """The assurance activities of FTP_ITC.1 / FCS_CKM.2 for the SIEM channel: a server
    certificate whose name is not the configured reference identifier, one that has
    expired, a server that offers only TLS 1.0/1.1, one that offers only RSA key
    transport: each handshake fails, no record is sent, and the failure is audited."""
    ca = make_ca("collector CA", dt.datetime.now(dt.UTC) - dt.timedelta(days=30), days=60)
    (tmp_path / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    cert, key = _server_cert(
        tmp_path / "server",
        ca,
        host="siem.example.net" if collector == "another host's certificate" else "localhost",
        days=(-10, -1) if collector == "an expired certificate" else (-1, 2),
        rsa_key=collector == "RSA key transport only",
    )

    async def scenario() -> None:
        clock, health, auditor, state = await _open(tmp_path)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if collector == "TLS 1.0-1.1 only":
            _weak_server(ctx, versions=True)
        elif collector == "RSA key transport only":
            _weak_server(ctx, rsa_only=True)
        # A blocking TLS server in a thread, as collectors are: it finishes its side of a
        # refused handshake (the alert) before it closes.
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        received: list[bytes] = []
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(2)
                    try:
                        with ctx.wrap_socket(conn, server_side=True) as tls:
                            received.append(tls.recv(65536))
                    except (ssl.SSLError, OSError):
                        pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        failures = SessionFailures(auditor, clock)
        fwd = _forwarder(port, str(tmp_path / "ca.pem"), auditor, state, clock, health, failures)
        tasks = [asyncio.create_task(fwd.run()), asyncio.create_task(failures.run())]

        async def recorded() -> bool:
            return bool(await _failures(auditor))

        await _until(recorded)
        (record,) = await _failures(auditor)
        assert record.object == "siem:siem" and record.outcome is Outcome.FAILURE
        assert str(record.details["reason"]).startswith("TLS"), record.details
        assert not any(received)  # not one byte of the log went to it
        assert fwd.status.connected is False
        for t in tasks:
            t.cancel()
        stop.set()
        thread.join()
        listener.close()
        await auditor.stop()
        await state.close()

    asyncio.run(scenario())
