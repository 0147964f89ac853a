"""Calls bound to their declaration: the client sends a method's declared params and gets
its declared result back, a sensitive call leaves no copy of its secrets on the client,
and handlers are routed by the declaration they name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from mfpsecd.base.access import Privilege
from mfpsecd.base.admission import AdmissionRules
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink.calls import CallContext, Last
from mfpsecd.varlink.client import AsyncConnection, Connection
from mfpsecd.varlink.routes import handles, routes
from mfpsecd.varlink.schema import Interface, Method, NoParams
from mfpsecd.varlink.server import ServerLimits, VarlinkServer
from tests.support.fakeclock import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class KeepParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    secret: bytearray


class Kept(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    length: int


class CountParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    to: int


class Tick(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    n: int


class Names(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    names: list[str]


KEEP = Method(
    name="Keep",
    doc="Keep a secret.",
    params=KeepParams,
    result=Kept,
    requires=Privilege.STATUS_READ,
    errors=(ErrorCode.INVALID_PARAMETER,),
    sensitive=True,
)
COUNT = Method(
    name="Count",
    doc="Count to n.",
    params=CountParams,
    result=Tick,
    requires=Privilege.STATUS_READ,
    streams=True,
)
NAMES = Method(
    name="Names",
    doc="What was kept.",
    params=NoParams,
    result=Names,
    requires=Privilege.STATUS_READ,
)
VAULT = Interface(name="org.example.Vault", doc="A test vault.", methods=(KEEP, COUNT, NAMES))


class VaultHandlers:
    def __init__(self) -> None:
        self.kept: dict[str, bytes] = {}

    @handles(KEEP)
    async def keep(self, ctx: CallContext, p: KeepParams) -> Kept:
        if not p.secret:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="secret")
        self.kept[p.name] = bytes(p.secret)
        return Kept(p.name, len(p.secret))

    @handles(COUNT)
    async def count(self, ctx: CallContext, p: CountParams) -> AsyncIterator[Tick | Last[Tick]]:
        for n in range(1, p.to):
            yield Tick(n)
        yield Last(Tick(p.to))

    @handles(NAMES)
    def names(self, ctx: CallContext, _: NoParams) -> Names:
        return Names(sorted(self.kept))


async def _serve(path: Path, vault: VaultHandlers) -> VarlinkServer:
    server = VarlinkServer(
        routes(vault),
        AdmissionRules(os.geteuid(), frozenset(), frozenset()),
        ServerLimits(),
        FakeClock(),
        interfaces=[VAULT],
    )
    await server.listen(path, None)
    return server


def test_the_blocking_client_sends_declared_params_and_decodes_declared_results(
    tmp_path: Path,
) -> None:
    vault = VaultHandlers()
    sock = tmp_path / "v.sock"

    def client() -> None:
        with Connection(str(sock)) as conn:
            secret = bytearray(b"correct horse")
            kept = conn.call(KEEP, KeepParams("door", secret))
            assert kept == Kept("door", 13)
            # Sent, then zeroed on this side; the daemon got every byte.
            assert secret == bytearray(13)
            assert vault.kept["door"] == b"correct horse"
            refused = bytearray()
            with pytest.raises(MfpsecError) as exc:
                conn.call(KEEP, KeepParams("empty", refused))
            assert exc.value.code is ErrorCode.INVALID_PARAMETER
            assert conn.call(NAMES) == Names(["door"])
            assert list(conn.call_more(COUNT, CountParams(3))) == [Tick(1), Tick(2), Tick(3)]
            # A call by name still returns the raw parameters.
            assert msgspec.json.decode(conn.call("org.example.Vault.Names")) == {"names": ["door"]}

    async def scenario() -> None:
        server = await _serve(sock, vault)
        try:
            await asyncio.to_thread(client)
        finally:
            await server.close()

    asyncio.run(scenario())


def test_a_sensitive_call_that_cannot_be_sent_still_zeroes_its_secrets(tmp_path: Path) -> None:
    vault = VaultHandlers()
    sock = tmp_path / "v.sock"

    async def scenario() -> None:
        server = await _serve(sock, vault)
        conn = Connection(str(sock))
        await server.close()
        secret = bytearray(b"never left")
        with pytest.raises(MfpsecError):
            # The daemon went away: the call fails, and the secret is gone anyway.
            for _ in range(3):
                await asyncio.to_thread(conn.call, KEEP, KeepParams("x", secret))
        conn.close()
        assert secret == bytearray(10)
        assert vault.kept == {}

    asyncio.run(scenario())


def test_the_asyncio_client_is_typed_the_same_way(tmp_path: Path) -> None:
    vault = VaultHandlers()
    sock = tmp_path / "v.sock"

    async def scenario() -> None:
        server = await _serve(sock, vault)
        try:
            async with await AsyncConnection.open(str(sock)) as conn:
                secret = bytearray(b"pin 4711")
                assert await conn.call(KEEP, KeepParams("pin", secret)) == Kept("pin", 8)
                assert secret == bytearray(8)
                assert [t async for t in conn.call_more(COUNT, CountParams(2))] == [
                    Tick(1),
                    Tick(2),
                ]
                assert await conn.call(NAMES) == Names(["pin"])
        finally:
            await server.close()

    asyncio.run(scenario())


def test_routes_name_each_handler_by_its_declaration() -> None:
    table = routes(VaultHandlers())
    assert set(table) == {
        "org.example.Vault.Keep",
        "org.example.Vault.Count",
        "org.example.Vault.Names",
    }
    assert table["org.example.Vault.Keep"].__qualname__ == "VaultHandlers.keep"
    with pytest.raises(TypeError, match=r"two handlers for org\.example\.Vault"):
        routes(VaultHandlers(), VaultHandlers())


def test_a_method_is_listed_by_one_interface_only() -> None:
    with pytest.raises(ValueError, match=r"already listed by org\.example\.Vault"):
        Interface(name="org.example.Other", doc="", methods=(KEEP,))
    unlisted = Method(
        name="Loose", doc="", params=NoParams, result=Names, requires=Privilege.STATUS_READ
    )
    with pytest.raises(ValueError, match="listed by no Interface"):
        _ = unlisted.qualified_name


_PROBE = """
from tests.varlink.test_typed_binding import (
    COUNT, KEEP, CountParams, KeepParams, Kept, Names, Tick)
from collections.abc import AsyncIterator
from mfpsecd.varlink.client import Connection
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.calls import CallContext, Last


class Wrong:
    @handles(KEEP)
    async def keep(self, ctx: CallContext, p: CountParams) -> Kept:
        return Kept("", 0)

    @handles(COUNT)
    async def count(self, ctx: CallContext, p: CountParams) -> Kept:
        return Kept("", 0)


def call(conn: Connection) -> Names:
    return conn.call(KEEP, CountParams(1))
"""


def test_mypy_holds_handlers_and_calls_to_their_declaration(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            "--follow-imports",
            "silent",
            str(probe),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        check=False,
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    # The handler taking the wrong params, the unary handler for a streaming method, the
    # call with the wrong params and the wrong result: each one refused.
    lines = {int(line.split(":")[1]) for line in errors}
    source = _PROBE.splitlines()
    assert {source[n - 1].strip() for n in lines} == {
        "@handles(KEEP)",  # mypy names the decorator of the handler it refuses
        "@handles(COUNT)",
        "return conn.call(KEEP, CountParams(1))",
    }, run.stdout
