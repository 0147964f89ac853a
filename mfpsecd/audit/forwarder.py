"""SIEM forwarding (L-3): every audit record, once, in order, to each configured destination.

Each destination has a cursor in the state database: the last sequence number the SIEM's
TCP stack has acknowledged (the socket's send queue drained to zero after the write). A
restart, a SIEM outage or a broken connection resumes from the cursor, so nothing is lost
and, as long as a connection is not cut between the SIEM receiving a batch and its
acknowledgement reaching us, nothing is sent twice; every message carries its sequence
number in its structured data for a SIEM to spot the rare repeat. The backlog is the log
itself (bounded by the audit capacity policy, which keeps unforwarded records).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import socket
import ssl
import termios
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from mfpsecd.audit import log_format as auditlog
from mfpsecd.audit.model import siem
from mfpsecd.audit.service import Auditor
from mfpsecd.audit.session_failures import SessionFailures, describe
from mfpsecd.base.backoff import BackoffPolicy, BackoffState
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.config.schema import AuditForwardSection, ForwardTransport
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.base.tls import client_context

log = structlog.get_logger("mfpsecd.forward")

BATCH = 500
ACK_TIMEOUT_S = 10.0
# Reconnect quickly after an outage, never give up: a SIEM may be away for days.
# How long a new TLS 1.3 session waits for the collector to refuse the client.
SETTLE_S = 0.5
RECONNECT = BackoffPolicy(
    initial_s=0.5, factor=2.0, max_s=10.0, healthy_after_s=30.0, give_up_after=2**62
)


@dataclass
class DestinationStatus:
    name: str
    transport: str
    format: str
    address: str
    connected: bool = False
    cursor: int = 0
    backlog: int = 0
    last_error: str = ""
    last_sent_at: str = ""
    sent: int = 0


@dataclass
class _Cursors:
    """Everything all destinations have is safe elsewhere: counts as exported (L-5)."""

    by_name: dict[str, int] = field(default_factory=dict)

    def low(self) -> int:
        return min(self.by_name.values()) if self.by_name else 0


class Forwarder:
    def __init__(
        self,
        dest: AuditForwardSection,
        auditor: Auditor,
        state: StateStore,
        clock: Clock,
        health: HealthRegistry,
        *,
        cursors: _Cursors,
        hostname: str,
        version: str,
        device: Callable[[], siem.Device] = lambda: siem.NO_DEVICE,
        failures: SessionFailures | None = None,
    ) -> None:
        self.dest = dest
        self._device = device
        self._failures = failures
        self._auditor = auditor
        self._state = state
        self._clock = clock
        self._health = health
        self._cursors = cursors
        self._hostname = hostname
        self._version = version
        self._format = siem.Format(dest.format.value)
        self.status = DestinationStatus(
            dest.name, dest.transport.value, dest.format.value, f"{dest.host}:{dest.port}"
        )
        self._component = f"forward:{dest.name}"

    @property
    def _key(self) -> str:
        return f"forward.{self.dest.name}.cursor"

    async def _load_cursor(self) -> int:
        def tx(conn: StateConnection) -> int:
            row = conn.execute(
                "SELECT value FROM audit_meta WHERE key = ?", (self._key,)
            ).fetchone()
            return int(str(row[0])) if row else 0

        return await self._state.run(tx)

    async def _save_cursor(self, seq: int) -> None:
        def tx(conn: StateConnection) -> None:
            conn.execute(
                "INSERT INTO audit_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                "DO UPDATE SET value = excluded.value",
                (self._key, str(seq)),
            )

        await self._state.run(tx)
        self._cursors.by_name[self.dest.name] = seq
        await self._auditor.mark_exported(self._cursors.low())

    def _ssl(self) -> ssl.SSLContext:
        ctx = client_context(self.dest.ca_file)
        if self.dest.client_cert_file and self.dest.client_key_file:
            # Read at every connection: a renewed certificate is used without a restart;
            # and checked again, as it may have been replaced by one others can read.
            _load_client_certificate(ctx, self.dest)
        return ctx

    async def run(self) -> None:
        """Supervised task: forward for ever, reconnecting with backoff."""
        self.status.cursor = await self._load_cursor()
        self._cursors.by_name[self.dest.name] = self.status.cursor
        backoff = BackoffState(RECONNECT)
        while True:
            started = self._clock.monotonic()
            try:
                await self._session()
            except (OSError, ssl.SSLError, MfpsecError, asyncio.IncompleteReadError) as exc:
                reason = describe(exc)
                if self._failures is not None:
                    self._failures.report(
                        self._component.replace("forward:", "siem:"), self.status.address, reason
                    )
                self.status.connected = False
                self.status.last_error = reason
                delay = backoff.on_exit(self._clock.monotonic() - started) or RECONNECT.max_s
                log.warning(
                    "forward_disconnected",
                    destination=self.dest.name,
                    reason=reason,
                    retry_in_s=delay,
                    cursor=self.status.cursor,
                )
                self._health.set(
                    self._component,
                    HealthState.BACKOFF,
                    f"{self.status.address} unreachable ({reason}); cursor "
                    f"{self.status.cursor}, retrying in {delay:g} s",
                )
                await self._clock.sleep(delay)

    async def _session(self) -> None:
        if self.dest.transport is ForwardTransport.UDP:
            await self._udp_session()
            return
        ctx = self._ssl() if self.dest.transport is ForwardTransport.TLS else None
        reader, writer = await asyncio.open_connection(
            self.dest.host,
            self.dest.port,
            ssl=ctx,
            server_hostname=(self.dest.server_name or self.dest.host) if ctx else None,
        )
        try:
            if ctx is not None:
                await _accepted(reader, writer)
            self.status.connected = True
            self.status.last_error = ""
            self._report()
            while True:
                batch = await self._auditor.records_after(self.status.cursor, BATCH)
                if not batch:
                    self._report()
                    waiter = asyncio.ensure_future(self._auditor.wait_beyond(self.status.cursor))
                    closed = asyncio.ensure_future(reader.read(1))  # the SIEM hung up?
                    done, _ = await asyncio.wait(
                        {waiter, closed}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if closed in done:
                        waiter.cancel()
                        raise ConnectionResetError("closed by the SIEM")
                    closed.cancel()
                    continue
                writer.write(b"".join(siem.octet_counted(self._message(raw)) for raw in batch))
                await writer.drain()
                await self._acknowledged(writer)
                await self._advance(batch)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def _acknowledged(self, writer: asyncio.StreamWriter) -> None:
        """Wait until the peer's TCP stack has acknowledged everything written."""
        sock = writer.get_extra_info("socket")
        fd = sock.fileno()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_TIMEOUT_S
        buf = array.array("i", [0])
        while True:
            fcntl.ioctl(fd, termios.TIOCOUTQ, buf, True)
            if buf[0] == 0:
                return
            if loop.time() > deadline:
                raise TimeoutError("the SIEM did not acknowledge in time")
            await asyncio.sleep(0.005)

    async def _udp_session(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol,
            remote_addr=(self.dest.host, self.dest.port),
            family=socket.AF_UNSPEC,
        )
        try:
            self.status.connected = True
            while True:
                batch = await self._auditor.records_after(self.status.cursor, BATCH)
                if not batch:
                    self._report()
                    await self._auditor.wait_beyond(self.status.cursor)
                    continue
                for raw in batch:
                    transport.sendto(self._message(raw))
                await self._advance(batch)
        finally:
            transport.close()

    def _message(self, raw: bytes) -> bytes:
        record = auditlog.decode(raw)
        pid = self._auditor.writer_of(record.seq)  # PROCID: who wrote it, also on replay
        return siem.syslog_message(
            record,
            self._format,
            hostname=self._hostname,
            version=self._version,
            procid=str(pid) if pid > 0 else "-",
            device=self._device(),
        )

    async def _advance(self, batch: list[bytes]) -> None:
        last = auditlog.head(batch[-1])
        if last is None:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason="unreadable audit record")
        await self._save_cursor(last[0])
        self.status.cursor = last[0]
        self.status.sent += len(batch)
        self.status.last_sent_at = rfc3339(self._clock)

    def _report(self) -> None:
        self.status.backlog = max(self._auditor.last_seq - self.status.cursor, 0)
        self._health.set(
            self._component,
            HealthState.OK,
            f"{self.status.transport} {self.status.address} {self.status.format}: "
            f"connected, backlog {self.status.backlog}",
        )


def make_forwarders(
    dests: list[AuditForwardSection],
    auditor: Auditor,
    state: StateStore,
    clock: Clock,
    health: HealthRegistry,
    *,
    hostname: str,
    version: str,
    device: Callable[[], siem.Device] = lambda: siem.NO_DEVICE,
    failures: SessionFailures | None = None,
) -> list[Forwarder]:
    cursors = _Cursors()
    for d in dests:
        _check_client_certificate(d)
        if d.transport is ForwardTransport.TLS and not d.ca_file:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"audit.forward {d.name}: TLS needs "
                "ca_file (the SIEM certificate is always verified)",
                key=f"audit.forward[{d.name}].ca_file",
                reason="missing",
            )
    return [
        Forwarder(
            d,
            auditor,
            state,
            clock,
            health,
            cursors=cursors,
            hostname=hostname,
            version=version,
            device=device,
            failures=failures,
        )
        for d in dests
    ]


async def _accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """With TLS 1.3 a collector judges the client's certificate after the client thinks
    the handshake done, and refuses with an alert: records written before it would be
    acknowledged by TCP and counted as sent, though the collector dropped them. So the
    session is used only once the collector had time to refuse it (a syslog collector
    never sends anything else); TLS 1.2 refuses within the handshake itself."""
    tls = writer.get_extra_info("ssl_object")
    if tls is None or tls.version() != "TLSv1.3":
        return
    try:
        data = await asyncio.wait_for(reader.read(1), SETTLE_S)
    except TimeoutError:
        return  # nothing said: accepted
    if not data:
        raise ConnectionResetError("closed by the SIEM after the TLS handshake")


def _refused_key(d: AuditForwardSection, reason: str) -> MfpsecError:
    where = f"audit.forward[{d.name}]"
    return MfpsecError(
        ErrorCode.CONFIG_INVALID,
        f"{where}: {reason}",
        key=f"{where}.client_key_file",
        reason=reason,
    )


def _load_client_certificate(ctx: ssl.SSLContext, d: AuditForwardSection) -> None:
    """MfpsecError (CONFIG_INVALID) for a key others can read or an encrypted one;
    OSError or SSLError for files that do not load."""
    cert, key = d.client_cert_file, d.client_key_file
    assert cert is not None and key is not None
    if os.stat(key).st_mode & 0o007:
        raise _refused_key(d, f"{key} is readable by others: chmod o-rwx")

    def no_passphrase() -> bytes:
        # An encrypted key would make OpenSSL ask on the terminal, blocking the daemon.
        raise _refused_key(d, f"{key} is encrypted: give it unencrypted, mode 0600")

    ctx.load_cert_chain(cert, key, password=no_passphrase)


def _check_client_certificate(d: AuditForwardSection) -> None:
    """Mutual TLS: both files or neither, TLS only, a key no one else can read, and a
    pair that loads (checked at start: a typo is not found at the first connection)."""
    cert, key = d.client_cert_file, d.client_key_file
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise _refused_key(d, "client_cert_file and client_key_file go together")
    if d.transport is not ForwardTransport.TLS:
        raise _refused_key(d, "a client certificate needs transport tls")
    try:
        _load_client_certificate(ssl.create_default_context(), d)
    except (OSError, ssl.SSLError) as exc:
        raise _refused_key(d, f"cannot load the client certificate: {describe(exc)}") from None
