"""The Varlink server in-process, with a fake clock and handlers that misbehave."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.base.admission import AdmissionRules
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.daemon.handlers import build_handlers
from mfpsecd.daemon.interfaces import INTERFACES
from mfpsecd.system.api import DaemonState
from mfpsecd.system.handlers import fast_replies
from mfpsecd.system.status import BoardInfo, StatusService
from mfpsecd.varlink import wire
from mfpsecd.varlink.server import ServerLimits, VarlinkServer
from mfpsecd.varlink.service import InterfaceDescription
from tests.support.fakeclock import FakeClock, settle

GET_STATUS = b'{"method":"io.mfpsecd.System.GetStatus"}\0'


async def _serve(
    tmp: Path,
    clock: FakeClock,
    patch: dict[str, Any] | None = None,
    limits: ServerLimits | None = None,
    without: str | None = None,
) -> tuple[VarlinkServer, StatusService]:
    import os

    status = StatusService(clock, HealthRegistry(clock), BoardInfo("b", "simulated"))
    status.set_lifecycle(DaemonState.READY)
    handlers = {**build_handlers(status), **(patch or {})}
    handlers.pop(without or "", None)
    server = VarlinkServer(
        handlers,
        AdmissionRules(os.geteuid(), frozenset(), frozenset()),
        limits or ServerLimits(),
        clock,
        interfaces=INTERFACES,
        # the fast path answers GetStatus itself: not when it is patched
        fast=None if patch or without else fast_replies(status),
    )
    await server.listen(tmp / "s.sock", None)
    return server, status


async def _roundtrip(path: Path, data: bytes) -> list[dict[str, Any]]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    writer.write_eof()
    out = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return [json.loads(m) for m in out.split(b"\0")[:-1]]


def _run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(fn())


def _undeclared_sync(ctx: Any, params: Any) -> Any:
    raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="/var/lib/secret-path")


def _crash_sync(ctx: Any, params: Any) -> Any:
    raise ZeroDivisionError("pin=1234")


async def _undeclared_async(ctx: Any, params: Any) -> Any:
    return _undeclared_sync(ctx, params)


async def _crash_async(ctx: Any, params: Any) -> Any:
    return _crash_sync(ctx, params)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_undeclared_and_crashing_handlers_answer_internal_without_detail(
    tmp_path: Path, kind: str
) -> None:
    undeclared, crash = (
        (_undeclared_sync, _crash_sync) if kind == "sync" else (_undeclared_async, _crash_async)
    )

    async def declared(ctx: Any, params: Any) -> Any:
        raise MfpsecError(ErrorCode.INTERFACE_NOT_FOUND, interface="x.y")

    async def scenario() -> None:
        clock = FakeClock()
        for handler, expected in [
            (undeclared, {"error": "io.mfpsecd.System.Internal", "parameters": {}}),
            (crash, {"error": "io.mfpsecd.System.Internal", "parameters": {}}),
        ]:
            server, _ = await _serve(tmp_path, clock, {"io.mfpsecd.System.GetStatus": handler})
            assert await _roundtrip(tmp_path / "s.sock", GET_STATUS + GET_STATUS) == [
                expected,
                expected,
            ]  # the connection survives a handler failure
            await server.close()
        server, _ = await _serve(
            tmp_path, clock, {"org.varlink.service.GetInterfaceDescription": declared}
        )
        r = await _roundtrip(
            tmp_path / "s.sock",
            b'{"method":"org.varlink.service.'
            b'GetInterfaceDescription","parameters":{"interface":"a.b"}}\0',
        )
        assert r == [
            {"error": "org.varlink.service.InterfaceNotFound", "parameters": {"interface": "x.y"}}
        ]
        await server.close()
        assert not (tmp_path / "s.sock").exists()

    _run(scenario)


def test_oneway_gets_no_reply_and_missing_handler_is_not_implemented(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        server, _ = await _serve(tmp_path, clock, without="io.mfpsecd.System.GetStatus")
        r = await _roundtrip(
            tmp_path / "s.sock",
            b'{"method":"org.varlink.service.GetInfo","oneway":true}\0' + GET_STATUS,
        )
        assert r == [
            {
                "error": "org.varlink.service.MethodNotImplemented",
                "parameters": {"method": "io.mfpsecd.System.GetStatus"},
            }
        ]
        await server.close()

    _run(scenario)


def test_idle_connections_are_closed_by_the_reaper(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        server, _ = await _serve(tmp_path, clock, limits=ServerLimits(idle_timeout_s=60))
        reaper = asyncio.create_task(server.reap_idle())
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "s.sock"))
        writer.write(GET_STATUS)
        assert b'"parameters"' in await reader.readuntil(b"\0")
        await settle()
        assert server.connection_count == 1
        await clock.advance(45)
        assert server.connection_count == 1 and not reader.at_eof()
        await clock.advance(30)  # idle 75 s > 60 s
        assert await asyncio.wait_for(reader.read(), 5) == b""
        await settle()
        assert server.connection_count == 0
        reaper.cancel()
        writer.close()
        await server.close()

    _run(scenario)


def test_connection_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        server, _ = await _serve(tmp_path, clock, limits=ServerLimits(max_connections=2))
        conns = [await asyncio.open_unix_connection(str(tmp_path / "s.sock")) for _ in range(3)]
        await settle()
        assert server.connection_count == 2
        assert await asyncio.wait_for(conns[2][0].read(), 5) == b""  # refused: closed at once
        conns[0][1].write(GET_STATUS)
        assert b'"parameters"' in await conns[0][0].readuntil(b"\0")
        for _, w in conns:
            w.close()
        await server.close()

    _run(scenario)


def test_pipelined_calls_beyond_the_queue_depth_are_all_answered_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        server, _ = await _serve(tmp_path, clock, limits=ServerLimits(queue_depth=2))
        calls = b"".join(
            b'{"method":"org.varlink.service.GetInterfaceDescription","parameters":'
            b'{"interface":"n%d.x"}}\0' % i
            for i in range(50)
        )
        replies = await _roundtrip(tmp_path / "s.sock", calls)
        assert [r["parameters"]["interface"] for r in replies] == [f"n{i}.x" for i in range(50)]
        await server.close()

    _run(scenario)


def test_plain_and_async_handlers_pipelined_keep_call_order(tmp_path: Path) -> None:
    """Plain handlers are answered from the read callback; a slow coroutine before them in
    the same pipeline must still be answered first."""

    async def slow_description(ctx: Any, params: Any) -> Any:
        await asyncio.sleep(0.05)
        return InterfaceDescription(description="slow " + params.interface)

    async def scenario() -> None:
        clock = FakeClock()
        server, _ = await _serve(
            tmp_path, clock, {"org.varlink.service.GetInterfaceDescription": slow_description}
        )
        slow = (
            b'{"method":"org.varlink.service.GetInterfaceDescription",'
            b'"parameters":{"interface":"a.b"}}\0'
        )
        replies = await _roundtrip(
            tmp_path / "s.sock", GET_STATUS + slow + GET_STATUS + slow + GET_STATUS
        )
        kinds = ["description" if "description" in r["parameters"] else "status" for r in replies]
        assert kinds == ["status", "description", "status", "description", "status"]
        await server.close()

    _run(scenario)


def test_status_follows_health_changes(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        server, status = await _serve(tmp_path, clock)
        first = status.get_status()
        await clock.advance(2.5)
        again = status.get_status()
        assert again.uptime_seconds == first.uptime_seconds + 2.5
        assert again.state is DaemonState.READY and again.components == []
        status._health.set("tpm", HealthState.FAILED, "no response")
        changed = (await _roundtrip(tmp_path / "s.sock", GET_STATUS))[0]["parameters"]
        assert changed["state"] == "degraded"
        assert [(c["name"], c["state"]) for c in changed["components"]] == [("tpm", "failed")]
        await server.close()

    _run(scenario)


def test_handler_table_is_checked_at_start() -> None:
    clock = FakeClock()
    rules = AdmissionRules(0, frozenset(), frozenset())

    def plain_stream(ctx: Any, params: Any) -> Any:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="async generator"):
        VarlinkServer(
            {"io.mfpsecd.System.WatchStatus": plain_stream},
            rules,
            ServerLimits(),
            clock,
            interfaces=INTERFACES,
        )
    with pytest.raises(TypeError, match="no interface declares"):
        VarlinkServer(
            {"io.mfpsecd.System.Nope": plain_stream},
            rules,
            ServerLimits(),
            clock,
            interfaces=INTERFACES,
        )


def test_pre_encoded_status_reply_is_exactly_the_encoded_status() -> None:
    import msgspec

    from mfpsecd.system.api import Status
    from mfpsecd.system.handlers import StatusReply

    clock = FakeClock()
    health = HealthRegistry(clock)
    status = StatusService(clock, health, BoardInfo('b "quoted" \u00e9', "simulated"))
    status.set_lifecycle(DaemonState.READY)
    reply = StatusReply(status)
    for step, uptime in enumerate([0.0, 0.001, 12.345, 86400.5, 1e7 + 0.125]):
        asyncio.run(clock.advance(uptime - status.uptime()))
        if step == 2:
            health.set("uptime_seconds", HealthState.OK, '"uptime_seconds":0.0')  # a decoy
        raw = reply.encoded()
        assert bytes(raw) == msgspec.json.encode(status.get_status())
        assert reply.message() == wire.encode_reply(raw)  # the fast path's whole message
        assert msgspec.json.decode(bytes(raw), type=Status).uptime_seconds == round(uptime, 3)


def test_fast_path_answers_exactly_like_the_parsed_path(tmp_path: Path) -> None:
    """The canonical GetStatus message is answered without parsing; the same call spelled
    otherwise is parsed. Pipelined together, the replies are the same and in order."""

    async def go() -> None:
        clock = FakeClock()
        server, _ = await _serve(tmp_path, clock)
        spelled = b'{"parameters":{},"method":"io.mfpsecd.System.GetStatus"}\0'
        info = b'{"method":"org.varlink.service.GetInfo"}\0'
        replies = await _roundtrip(
            tmp_path / "s.sock", GET_STATUS + spelled + info + GET_STATUS + GET_STATUS[:-1] + b" \0"
        )
        assert [sorted(r["parameters"]) for r in replies] == [
            sorted(replies[0]["parameters"])
        ] * 2 + [["interfaces", "product", "url", "vendor", "version"]] + [
            sorted(replies[0]["parameters"])
        ] * 2
        assert replies[0] == replies[1] == replies[3] == replies[4]
        await server.close()

    _run(go)
