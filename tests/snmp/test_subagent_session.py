"""The subagent's session against a master agent that misbehaves, played by the test on
a Unix socket with the same codec (the well-behaved master is the real snmpd in
test_fleet_daemon.py): it answers what it may and refuses writes, bounds a GetBulk, ends
a session on a PDU that does not parse or a master that stops answering, and opens a new
one after its backoff (the fake clock), while a notification without a session fails at
once for the alert outbox to retry."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mfpsecd.alerts.smi import SmiType, VarBind, mib_root
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.snmp.model import agentx_pdu as pdu
from mfpsecd.snmp.model.agentx_pdu import AgentxError, Flag, PduType
from mfpsecd.snmp.model.facts import DaemonFacts, Facts
from mfpsecd.snmp.subagent import COMPONENT, MAX_BULK_VARBINDS, AgentxSettings, Subagent
from tests.support.fakeclock import FakeClock

R = mib_root(32473)


async def _facts() -> Facts:
    return Facts(DaemonFacts("1", "ready", 1.0, "", 1, "clean", "sim", ""), [], [])


class Master:
    """One accepted connection at a time; the test drives what it says."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def accept(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await self.connections.put((r, w))

    @staticmethod
    async def read(r: asyncio.StreamReader) -> tuple[pdu.Header, bytes]:
        header = pdu.decode_header(await r.readexactly(pdu.HEADER_SIZE))
        return header, await r.readexactly(header.payload_length)

    async def open_session(
        self, session: int = 42
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Accept, answer Open and Register as snmpd does."""
        r, w = await asyncio.wait_for(self.connections.get(), 10)
        for expected in (PduType.OPEN, PduType.REGISTER):
            header, _ = await self.read(r)
            assert header.type == expected
            w.write(_response(header, session))
        return r, w


def _response(request: pdu.Header, session: int, error: int = 0) -> bytes:
    head = pdu.Header(request.type, request.flags, session, 0, request.packet_id, 0)
    return pdu.response_pdu(head, [], error=error)


def _request(pdu_type: PduType, session: int, packet: int, body: bytes) -> bytes:
    return (
        struct.pack(
            ">BBBB4I", 1, pdu_type, Flag.NETWORK_BYTE_ORDER, 0, session, 1, packet, len(body)
        )
        + body
    )


@asynccontextmanager
async def _running(
    tmp: Path, timeout_s: int = 5
) -> AsyncIterator[tuple[Master, Subagent, FakeClock, HealthRegistry]]:
    master = Master()
    path = tmp / "agentx"
    server = await asyncio.start_unix_server(master.accept, path)
    clock = FakeClock()
    health = HealthRegistry(clock)
    agent = Subagent(AgentxSettings(str(path), 32473, timeout_s, 0.0), _facts, clock, health)
    task = asyncio.create_task(agent.run())
    try:
        yield master, agent, clock, health
    finally:
        task.cancel()
        server.close()


async def _answer(r: asyncio.StreamReader, w: asyncio.StreamWriter, request: bytes) -> pdu.Response:
    w.write(request)
    header, payload = await Master.read(r)
    assert header.type == PduType.RESPONSE
    return pdu.decode_response(header, payload)


def test_reads_are_answered_writes_refused_and_a_getbulk_bounded(short_tmp: Path) -> None:
    async def scenario() -> None:
        async with _running(short_tmp) as (master, agent, _, health):
            r, w = await master.open_session(42)
            get = pdu.encode_oid((*R, 1, 1, 1, 0)) + pdu.encode_oid(())
            got = await _answer(r, w, _request(PduType.GET, 42, 10, get))
            assert got.header.packet_id == 10 and got.varbinds[0].value == b"1"
            assert health.components()[0].state is HealthState.OK
            # A wrong session id, a write, a huge GetBulk.
            got = await _answer(r, w, _request(PduType.GET, 41, 11, get))
            assert got.error == AgentxError.NOT_OPEN
            test_set = b"".join(
                [pdu.encode_varbind(VarBind((*R, 1, 1, 7, 0), SmiType.OCTET_STRING, b"x"))]
            )
            got = await _answer(r, w, _request(PduType.TEST_SET, 42, 12, test_set))
            assert (got.error, got.index) == (AgentxError.NOT_WRITABLE, 1)
            bulk = struct.pack(">HH", 0, 65535) + b"".join(
                pdu.encode_oid(o) + pdu.encode_oid(()) for o in [R, R]
            )
            got = await _answer(r, w, _request(PduType.GET_BULK, 42, 13, bulk))
            assert 0 < len(got.varbinds) <= MAX_BULK_VARBINDS
            assert got.varbinds[-1].type is SmiType.END_OF_MIB_VIEW
            # A notification goes to the master and is answered.
            sending = asyncio.create_task(agent.notify([VarBind(R, SmiType.NULL)]))
            header, _ = await master.read(r)
            assert header.type == PduType.NOTIFY and header.session_id == 42
            w.write(_response(header, 42))
            await sending
            assert agent.notifications == 1

    asyncio.run(scenario())


def test_garbage_ends_the_session_and_a_new_one_opens_after_the_backoff(
    short_tmp: Path,
) -> None:
    async def scenario() -> None:
        async with _running(short_tmp) as (master, agent, clock, health):
            _, w = await master.open_session(1)
            for _ in range(100):
                if agent.connected:
                    break
                await asyncio.sleep(0.01)
            w.write(b"\x07" * pdu.HEADER_SIZE)  # AgentX version 7
            for _ in range(300):
                if health.components()[0].state is HealthState.BACKOFF:
                    break
                await asyncio.sleep(0.01)
            component = health.components()[0]
            assert component.name == COMPONENT and "retrying in 1 s" in component.detail
            with pytest.raises(ConnectionError):  # no session: the outbox keeps the alert
                await agent.notify([VarBind(R, SmiType.NULL)])
            await clock.advance(1.0)
            await master.open_session(2)
            for _ in range(300):
                if health.components()[0].state is HealthState.OK:
                    break
                await asyncio.sleep(0.01)
            assert "session 2" in health.components()[0].detail

    asyncio.run(scenario())


def test_a_master_that_stops_answering_cannot_hold_a_notification(short_tmp: Path) -> None:
    async def scenario() -> None:
        async with _running(short_tmp, timeout_s=1) as (master, agent, _, health):
            r, w = await master.open_session(5)
            for _ in range(100):
                if agent.connected:
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(TimeoutError):  # never answered: given up after timeout_s
                await agent.notify([VarBind(R, SmiType.NULL)])
            # A master that refuses it: the outbox will try again.
            sending = asyncio.create_task(agent.notify([VarBind(R, SmiType.NULL)]))
            await master.read(r)  # the first, unanswered
            header, _ = await master.read(r)
            w.write(_response(header, 5, error=AgentxError.PROCESSING_ERROR))
            with pytest.raises(ConnectionError, match="processing_error"):
                await sending
            assert health.components()[0].state is HealthState.OK

    asyncio.run(scenario())


def test_a_master_that_hangs_up_before_answering_open_is_noticed_at_once(
    short_tmp: Path,
) -> None:
    """Not after the Open's timeout: the read that ended fails the waiting request."""

    async def scenario() -> None:
        async with _running(short_tmp, timeout_s=30) as (master, _, __, health):
            r, w = await asyncio.wait_for(master.connections.get(), 10)
            await master.read(r)  # the Open
            w.close()
            for _ in range(200):
                if health.components() and health.components()[0].state is HealthState.BACKOFF:
                    break
                await asyncio.sleep(0.01)
            detail = health.components()[0].detail
            assert "retrying in" in detail and "Timeout" not in detail, detail

    asyncio.run(scenario())


def test_stopping_the_subagent_leaves_no_task_behind(short_tmp: Path) -> None:
    async def scenario() -> None:
        master = Master()
        path = short_tmp / "agentx"
        server = await asyncio.start_unix_server(master.accept, path)
        clock = FakeClock()
        agent = Subagent(
            AgentxSettings(str(path), 32473, 5, 0.0), _facts, clock, HealthRegistry(clock)
        )
        task = asyncio.create_task(agent.run())
        await master.open_session(9)
        for _ in range(100):
            if agent.connected:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [n for n in left if n.startswith("agentx")], left
        server.close()

    asyncio.run(scenario())
