"""A fake remote-panel agent and a fake panel over IPC with the fake clock: the Remote
interface served in this process (the real server, admission and session table) to
clients under the agent's and the panel's uids, while the test moves time: a code that
expires, a consent that times out, an idle session the panel sees end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.model.policy import SessionPolicy
from mfpsecd.auth.sessions import SessionTable
from mfpsecd.base.admission import AdmissionRules
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.remote.api import REMOTE
from mfpsecd.remote.handlers import RemoteHandlers
from mfpsecd.remote.model.sessions import RemotePolicy
from mfpsecd.remote.service import RemoteService
from mfpsecd.remote.wiring import panel_hooks
from mfpsecd.varlink.routes import routes
from mfpsecd.varlink.server import ServerLimits, VarlinkServer
from tests.support.aio import sync
from tests.support.auth_cli import SOCKET_GID
from tests.support.fakeclock import FakeClock
from tests.support.remote_peers import AGENT_UID, PANEL_UID, call_as

POLICY = RemotePolicy(enabled=True, code_ttl_s=300, consent_ttl_s=60, idle_s=600)


@dataclass
class Served:
    sock: str
    clock: FakeClock
    remote: RemoteService

    async def agent(self, method: str, **params: object) -> dict[str, Any]:
        return await asyncio.to_thread(lambda: call_as(AGENT_UID, self.sock, method, **params))

    async def panel(self, method: str, **params: object) -> dict[str, Any]:
        return await asyncio.to_thread(lambda: call_as(PANEL_UID, self.sock, method, **params))

    async def passes(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.remote.tick()  # what the supervised loop does every second


@asynccontextmanager
async def served(tmp: Path) -> AsyncIterator[Served]:
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    sessions = SessionTable(clock, SessionPolicy())
    remote = RemoteService(
        state,
        auditor=auditor,
        clock=clock,
        policy=POLICY,
        panel=panel_hooks(sessions, frozenset({PANEL_UID})),
    )
    await remote.start()
    server = VarlinkServer(
        routes(RemoteHandlers(remote)),
        AdmissionRules(
            os.geteuid(),
            frozenset({PANEL_UID}),
            frozenset(),
            remote_agent_uids=frozenset({AGENT_UID}),
        ),
        ServerLimits(),
        clock,
        interfaces=[REMOTE],
        access=sessions,
    )
    sock = tmp / "remote.sock"
    await server.listen(sock, SOCKET_GID)
    try:
        yield Served(str(sock), clock, remote)
    finally:
        await server.close()
        await auditor.stop()
        await state.close()


def _state(requests: dict[str, Any], request_id: str) -> tuple[str, str]:
    (r,) = [r for r in requests["requests"] if r["id"] == request_id]
    return r["phase"], r["end_reason"]


@sync
async def test_the_agent_and_the_panel_over_ipc_as_time_passes(short_tmp: Path) -> None:
    async with served(short_tmp) as s:
        # A code nobody types expires.
        first = await s.agent("REQUEST_SESSION", remote="operator@vendor.example")
        assert (await s.panel("GET_REQUESTS"))["requests"][0]["seconds_left"] == 300
        await s.passes(301)
        assert _state(await s.panel("GET_REQUESTS"), first["id"]) == (
            "ended",
            "the access code expired",
        )
        late = await s.agent("PRESENT_CODE", request=first["id"], code="1234")
        assert late["error"] == "io.mfpsecd.Remote.RequestNotFound"
        # A code typed in time, and a consent the panel never gives.
        second = await s.agent("REQUEST_SESSION", remote="operator@vendor.example")
        code = next(
            r["code"]
            for r in (await s.panel("GET_REQUESTS"))["requests"]
            if r["id"] == second["id"]
        )
        assert (await s.agent("PRESENT_CODE", request=second["id"], code=code))[
            "phase"
        ] == "consent"
        await s.passes(61)
        assert _state(await s.panel("GET_REQUESTS"), second["id"])[1] == (
            "nobody approved it at the panel in time"
        )
        # Approved in time: active until it idles.
        third = await s.agent("REQUEST_SESSION", remote="operator@vendor.example")
        code = next(
            r["code"] for r in (await s.panel("GET_REQUESTS"))["requests"] if r["id"] == third["id"]
        )
        await s.agent("PRESENT_CODE", request=third["id"], code=code)
        assert (await s.panel("APPROVE", request=third["id"]))["phase"] == "active"
        await s.passes(300)
        assert (await s.agent("ACTIVITY", request=third["id"]))["seconds_left"] == 600
        await s.passes(601)
        assert _state(await s.panel("GET_REQUESTS"), third["id"]) == ("ended", "idle")
