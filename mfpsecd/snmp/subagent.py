"""The AgentX subagent (RFC 2741): a session with the device's net-snmp master agent that
serves the MFPSEC-MIB read-only from the daemon's live facts and hands it the alerts as
notifications, which snmpd sends to the trap destinations of its own configuration.

Written on the RFC directly rather than on an AgentX library: the subagent side is a
dozen PDU layouts (model/agentx_pdu.py), the libraries on PyPI (pyagentx3, agentx) are
thread-based and unmaintained, and pysnmp has no AgentX. One asyncio task, no thread.

It never blocks the daemon: every write waits at most timeout_s for the master to read,
every request at most timeout_s for its answer, and a master that stalls, closes or sends
what does not parse ends the session, which is opened again with a growing delay (1 s to
30 s) for as long as the daemon runs: snmpd restarting is an ordinary event."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from mfpsecd.alerts.smi import Oid, VarBind, mib_root
from mfpsecd.audit.session_failures import describe
from mfpsecd.base.backoff import BackoffPolicy, BackoffState
from mfpsecd.base.clock import Clock
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.snmp.model import agentx_pdu as pdu
from mfpsecd.snmp.model.agentx_pdu import AgentxError, AgentxParseError, Header, PduType
from mfpsecd.snmp.model.facts import Facts
from mfpsecd.snmp.model.mib_objects import MibView
from mfpsecd.snmp.ports import FactsSource

log = structlog.get_logger("mfpsecd.snmp")

COMPONENT = "snmp-agentx"
RECONNECT = BackoffPolicy(initial_s=1.0, max_s=30.0, healthy_after_s=60.0, give_up_after=1 << 30)
PING_EVERY_S = 30.0
# A GetBulk answers at most this many objects, whatever max-repetitions asks for.
MAX_BULK_VARBINDS = 1024


@dataclass(frozen=True)
class AgentxSettings:
    address: str  # a Unix socket path, or tcp:HOST:PORT
    enterprise: int
    timeout_s: int = 5
    cache_s: float = 1.0
    description: str = "mfpsecd"


class _Session:
    """One open AgentX session over one connection."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout_s: float
    ) -> None:
        self.reader, self.writer = reader, writer
        self.timeout_s = timeout_s
        self.id = 0
        self._packets = itertools.count(1)
        self._pending: dict[int, asyncio.Future[pdu.Response]] = {}
        self._write = asyncio.Lock()
        self.closed_by_master = False

    def next_packet(self) -> int:
        return next(self._packets) & 0xFFFFFFFF

    async def send(self, data: bytes) -> None:
        async with self._write:
            self.writer.write(data)
            try:
                await asyncio.wait_for(self.writer.drain(), self.timeout_s)
            except TimeoutError:
                raise ConnectionError("the master agent stopped reading") from None

    async def request(self, data: bytes, packet: int) -> pdu.Response:
        answer: asyncio.Future[pdu.Response] = asyncio.get_running_loop().create_future()
        self._pending[packet] = answer
        try:
            await self.send(data)
            return await asyncio.wait_for(answer, self.timeout_s)
        finally:
            self._pending.pop(packet, None)

    def answered(self, response: pdu.Response) -> None:
        answer = self._pending.pop(response.header.packet_id, None)
        if answer is not None and not answer.done():
            answer.set_result(response)

    def fail_pending(self, exc: BaseException) -> None:
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(exc)
        self._pending.clear()


class Subagent:
    def __init__(
        self, settings: AgentxSettings, facts: FactsSource, clock: Clock, health: HealthRegistry
    ) -> None:
        self.settings = settings
        self._facts = facts
        self._clock = clock
        self._health = health
        self._session: _Session | None = None
        self.on_session: Callable[[], None] | None = None  # called when a session opens
        self._reading_facts: asyncio.Task[Facts] | None = None
        self._view: MibView | None = None
        self._view_at = 0.0
        self.requests = 0
        self.notifications = 0

    @property
    def root(self) -> Oid:
        return mib_root(self.settings.enterprise)

    @property
    def connected(self) -> bool:
        return self._session is not None

    async def run(self) -> None:
        """Supervised task: keep a session with the master agent for ever."""
        backoff = BackoffState(RECONNECT)
        while True:
            started = self._clock.monotonic()
            try:
                await self._serve()
            except (OSError, EOFError, AgentxParseError, ValueError) as exc:
                reason = describe(exc)
                delay = backoff.on_exit(self._clock.monotonic() - started) or RECONNECT.max_s
                log.warning("agentx_disconnected", master=self.settings.address, reason=reason)
                self._health.set(
                    COMPONENT,
                    HealthState.BACKOFF,
                    f"no session with the master agent at {self.settings.address} "
                    f"({reason}); retrying in {delay:g} s",
                )
                await self._clock.sleep(delay)

    async def notify(self, varbinds: list[VarBind]) -> None:
        """Hand one notification to the master agent: OSError when there is no session or
        the master does not take it (the alert outbox tries again later)."""
        session = self._session
        if session is None:
            raise ConnectionError(f"no AgentX session with {self.settings.address}")
        packet = session.next_packet()
        answer = await session.request(
            pdu.notify_pdu(session=session.id, packet=packet, varbinds=varbinds), packet
        )
        if answer.error:
            raise ConnectionError(f"the master agent refused the notification: {_error(answer)}")
        self.notifications += 1

    # ---------------------------------------------------------------- one session

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        address = self.settings.address
        if address.startswith("tcp:"):
            host, _, port = address[4:].rpartition(":")
            opening = asyncio.open_connection(host.strip("[]"), port_number(port))
        else:
            opening = asyncio.open_unix_connection(address)
        return await asyncio.wait_for(opening, self.settings.timeout_s)

    async def _serve(self) -> None:
        reader, writer = await self._connect()
        session = _Session(reader, writer, self.settings.timeout_s)
        reading = asyncio.create_task(self._read(session), name="agentx-read")
        pinging: asyncio.Task[None] | None = None
        try:
            await self._open(session)
            self._session = session
            self._health.set(
                COMPONENT,
                HealthState.OK,
                f"serving MFPSEC-MIB ({'.'.join(map(str, self.root))}) through the master "
                f"agent at {self.settings.address}, session {session.id}",
            )
            log.info("agentx_registered", master=self.settings.address, session=session.id)
            if self.on_session is not None:
                self.on_session()
            pinging = asyncio.create_task(self._ping(session), name="agentx-ping")
            done, _ = await asyncio.wait({reading, pinging}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the reason the session ended
            raise ConnectionError("the session ended")
        finally:
            self._session = None
            tasks = [t for t in (reading, pinging) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            session.fail_pending(ConnectionError("the session ended"))
            await self._close(session)

    async def _open(self, session: _Session) -> None:
        packet = session.next_packet()
        opened = await session.request(
            pdu.open_pdu(
                packet=packet,
                timeout_s=self.settings.timeout_s,
                oid=self.root,
                description=self.settings.description,
            ),
            packet,
        )
        if opened.error:
            raise ConnectionError(f"Open refused: {_error(opened)}")
        session.id = opened.header.session_id
        packet = session.next_packet()
        registered = await session.request(
            pdu.register_pdu(session=session.id, packet=packet, subtree=self.root), packet
        )
        if registered.error:
            raise ConnectionError(f"Register refused: {_error(registered)}")

    async def _close(self, session: _Session) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            # A session the master closed is not closed again (it would log it unknown).
            if session.id and not session.closed_by_master and not session.writer.is_closing():
                session.writer.write(
                    pdu.close_pdu(
                        session=session.id,
                        packet=session.next_packet(),
                        reason=pdu.CloseReason.SHUTDOWN,
                    )
                )
        session.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(session.writer.wait_closed(), 1.0)

    async def _ping(self, session: _Session) -> None:
        """A master that no longer answers ends the session (it may have hung)."""
        while True:
            await self._clock.sleep(PING_EVERY_S)
            packet = session.next_packet()
            answer = await session.request(pdu.ping_pdu(session=session.id, packet=packet), packet)
            if answer.error:
                raise ConnectionError(f"Ping refused: {_error(answer)}")

    async def _read(self, session: _Session) -> None:
        """Until the session ends; what ended it also fails the requests that wait for
        an answer (an Open the master never answers does not wait out its timeout)."""
        try:
            while True:
                header = pdu.decode_header(await session.reader.readexactly(pdu.HEADER_SIZE))
                payload = await session.reader.readexactly(header.payload_length)
                await self._dispatch(session, header, payload)
        except (OSError, EOFError, AgentxParseError) as exc:
            session.fail_pending(exc)
            raise

    async def _dispatch(self, session: _Session, header: Header, payload: bytes) -> None:
        match header.type:
            case PduType.RESPONSE:
                session.answered(pdu.decode_response(header, payload))
            case PduType.GET | PduType.GET_NEXT | PduType.GET_BULK:
                await self._answer(session, header, payload)
            case PduType.TEST_SET:
                await session.send(
                    pdu.response_pdu(header, [], error=AgentxError.NOT_WRITABLE, index=1)
                )
            case PduType.COMMIT_SET:
                await session.send(pdu.response_pdu(header, [], error=AgentxError.COMMIT_FAILED))
            case PduType.UNDO_SET:
                await session.send(pdu.response_pdu(header, [], error=AgentxError.UNDO_FAILED))
            case PduType.CLEANUP_SET:
                pass  # no response (RFC 2741 7.2.4.4)
            case PduType.CLOSE:
                session.closed_by_master = True
                raise ConnectionError("the master agent closed the session")
            case _:
                await session.send(pdu.response_pdu(header, [], error=AgentxError.PROCESSING_ERROR))

    async def _answer(self, session: _Session, header: Header, payload: bytes) -> None:
        self.requests += 1
        try:
            request = pdu.decode_request(header, payload)
        except AgentxParseError:
            await session.send(pdu.response_pdu(header, [], error=AgentxError.PARSE_ERROR))
            return
        if header.session_id != session.id:
            await session.send(pdu.response_pdu(header, [], error=AgentxError.NOT_OPEN))
            return
        if request.context is not None:  # we registered the default context only
            await session.send(pdu.response_pdu(header, [], error=AgentxError.GEN_ERR, index=1))
            return
        try:
            view = await self._current_view()
        except Exception:
            log.exception("agentx_facts_failed")
            await session.send(pdu.response_pdu(header, [], error=AgentxError.GEN_ERR, index=1))
            return
        await session.send(pdu.response_pdu(header, _lookup(view, request)))

    async def _current_view(self) -> MibView:
        now = self._clock.monotonic()
        if self._view is None or now - self._view_at >= self.settings.cache_s:
            # Shielded: a slow read is given up by this request, never cut short (reading
            # the posture records its changes); the next request waits for the same read.
            if self._reading_facts is None or self._reading_facts.done():
                self._reading_facts = asyncio.ensure_future(self._facts())
            facts = await asyncio.wait_for(
                asyncio.shield(self._reading_facts), self.settings.timeout_s * 0.8
            )
            self._view, self._view_at = MibView(self.settings.enterprise, facts), now
        return self._view


def _lookup(view: MibView, request: pdu.Request) -> list[VarBind]:
    match request.header.type:
        case PduType.GET:
            return [view.get(r.start) for r in request.ranges]
        case PduType.GET_NEXT:
            return [view.get_next(r) for r in request.ranges]
        case _:
            repeaters = max(1, len(request.ranges) - request.non_repeaters)
            repetitions = min(request.max_repetitions, MAX_BULK_VARBINDS // repeaters)
            return view.get_bulk(request.ranges, request.non_repeaters, repetitions)


def port_number(text: str) -> int:
    """A TCP port of an agentx_socket: ValueError outside 1-65535."""
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not 1-65535")
    return port


def _error(response: pdu.Response) -> str:
    try:
        return AgentxError(response.error).name.lower()
    except ValueError:
        return f"error {response.error}"
