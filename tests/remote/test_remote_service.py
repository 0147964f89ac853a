"""R-1..R-6 at the service: a fake remote-panel agent and a fake panel driving the
service on a real state store and audit log, with the fake clock: the access code and
its guard (also under parallel attempts), the panel's consent and its busy states, the
session limits, and the manage window across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mfpsecd.alerts.rules import DEFAULT_RULES, alert_of
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Record, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.remote.model.manage_window import Mode, Operation
from mfpsecd.remote.model.sessions import PanelState, Phase, RemotePolicy, Request
from mfpsecd.remote.service import PanelHooks, RemoteService
from tests.support.aio import sync
from tests.support.fakeclock import FakeClock

AGENT = Subject(origin="remote-agent", uid=990)
PANEL = Subject(origin="panel", uid=991)
ADMIN = Subject(origin="cli", user="admin", role="administrator")
POLICY = RemotePolicy(enabled=True, code_ttl_s=300, consent_ttl_s=60, idle_s=600, max_s=3600)


def phase_of(r: Request) -> Phase:
    return r.phase  # read afresh: the calls in between change it


@dataclass
class FakePanel:
    """Who is logged in at the panel, as the auth sessions would say."""

    now: PanelState = field(default_factory=PanelState)

    def hooks(self) -> PanelHooks:
        def log_out() -> int:
            was, self.now = self.now, PanelState()
            return 1 if was.user else 0

        return PanelHooks(lambda: self.now, log_out)


@dataclass
class Stack:
    remote: RemoteService
    panel: FakePanel
    clock: FakeClock
    auditor: Auditor
    state: SqliteState

    async def records(self, type_: EventType = EventType.REMOTE_SESSION) -> list[Record]:
        return await self.auditor.query(AuditQuery(types=frozenset({type_}), limit=0))


@asynccontextmanager
async def stack(
    tmp: Path, policy: RemotePolicy = POLICY, clock: FakeClock | None = None
) -> AsyncIterator[Stack]:
    clock = clock or FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    panel = FakePanel()
    remote = RemoteService(state, auditor=auditor, clock=clock, policy=policy, panel=panel.hooks())
    await remote.start()
    try:
        yield Stack(remote, panel, clock, auditor, state)
    finally:
        await auditor.stop()
        await state.close()


async def _active(s: Stack, remote: str = "operator@vendor.example") -> str:
    r = await s.remote.request(remote, AGENT)
    await s.remote.present(r.id, r.code, AGENT)
    await s.remote.decide(r.id, True, PANEL)
    return r.id


async def _code(s: Stack, code: ErrorCode, *args: object) -> MfpsecError:
    with pytest.raises(MfpsecError) as exc:
        await s.remote.present(*args)  # type: ignore[arg-type]
    assert exc.value.code is code, exc.value
    return exc.value


@sync
async def test_switched_off_nothing_starts(tmp_path: Path) -> None:
    async with stack(tmp_path, RemotePolicy(enabled=False)) as s:
        with pytest.raises(MfpsecError) as exc:
            await s.remote.request("operator", AGENT)
        assert exc.value.code is ErrorCode.REMOTE_REFUSED
        assert "switched off" in str(exc.value.params["reason"])
        (r,) = await s.records()
        assert r.details["phase"] == "request" and r.outcome.value == "failure"


@sync
async def test_code_then_consent_then_an_active_session(tmp_path: Path) -> None:
    async with stack(tmp_path, RemotePolicy(enabled=True, code_length=6)) as s:
        r = await s.remote.request("operator@vendor.example", AGENT)
        assert len(r.code) == 6 and r.code.isdigit() and r.phase is Phase.CODE
        code = r.code
        wrong = "000000" if code != "000000" else "111111"
        err = await _code(s, ErrorCode.REMOTE_CODE_WRONG, r.id, wrong, AGENT)
        assert err.params["tries_left"] == 2
        await s.remote.present(r.id, code, AGENT)
        assert phase_of(r) is Phase.CONSENT and r.code == ""  # single use
        await _code(s, ErrorCode.REMOTE_REQUEST_NOT_FOUND, r.id, code, AGENT)
        await s.remote.decide(r.id, True, PANEL)
        assert phase_of(r) is Phase.ACTIVE
        await s.remote.end(r.id, "the operator closed the viewer", AGENT)
        phases = [x.details["phase"] for x in await s.records()]
        assert phases == ["request", "code", "code", "connect", "disconnect"]
        # The code is never in a record.
        raw = b"".join(f.read_bytes() for f in (tmp_path / "audit").rglob("*") if f.is_file())
        assert f'"{code}"'.encode() not in raw


@sync
async def test_three_wrong_codes_void_a_request_and_a_denial_ends_one(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        r = await s.remote.request("operator", AGENT)
        bad = "9999" if r.code != "9999" else "8888"
        for left in (2, 1):
            err = await _code(s, ErrorCode.REMOTE_CODE_WRONG, r.id, bad, AGENT)
            assert err.params["tries_left"] == left
        await _code(s, ErrorCode.REMOTE_CODE_WRONG, r.id, bad, AGENT)
        assert r.phase is Phase.ENDED and r.end_reason == "too many wrong access codes"
        await _code(s, ErrorCode.REMOTE_REQUEST_NOT_FOUND, r.id, r.code, AGENT)
        q = await s.remote.request("operator", AGENT)
        await s.remote.present(q.id, q.code, AGENT)
        await s.remote.decide(q.id, False, PANEL)
        assert q.phase is Phase.ENDED and q.end_reason == "denied at the panel"


@sync
async def test_parallel_wrong_codes_are_each_counted_and_lock_out(tmp_path: Path) -> None:
    policy = RemotePolicy(enabled=True, identity_failures=5, total_failures=12, lockout_s=900)
    async with stack(tmp_path, policy) as s:
        requests = [await s.remote.request("mallory", AGENT) for _ in range(4)]

        async def guess(request_id: str, code: str) -> ErrorCode:
            try:
                await s.remote.present(request_id, code, AGENT)
            except MfpsecError as exc:
                return exc.code
            return ErrorCode.INVALID_PARAMETER  # a guess that got in: the test fails below

        guesses = [
            guess(r.id, g) for r in requests for g in ("0000", "1111", "2222") if g != r.code
        ]
        got = await asyncio.gather(*guesses)
        assert ErrorCode.INVALID_PARAMETER not in got
        # Exactly five counted before the identity locked out; every later one refused.
        wrong = [
            x
            for x in await s.records()
            if x.details.get("phase") == "code" and "wrong" in x.details
        ]
        assert len(wrong) == 5
        # Four answered CodeWrong, the fifth locked the identity out; every later guess
        # was refused (locked out, or its request already void) without being tried.
        assert got.count(ErrorCode.REMOTE_CODE_WRONG) == 4
        refused = {ErrorCode.REMOTE_LOCKED_OUT, ErrorCode.REMOTE_REQUEST_NOT_FOUND}
        assert all(c in refused for c in got if c is not ErrorCode.REMOTE_CODE_WRONG)
        with pytest.raises(MfpsecError) as exc:
            await s.remote.request("mallory", AGENT)
        assert "locked out" in str(exc.value.params["reason"])
        # Many identities together trip the global lockout.
        for n in range(4):  # 5 + 8 wrong codes in all: past total_failures (12)
            r = await s.remote.request(f"spray-{n}", AGENT)
            for g in ("0000", "1111", "2222")[:2]:
                if g != r.code:
                    with pytest.raises(MfpsecError):
                        await s.remote.present(r.id, g, AGENT)
        with pytest.raises(MfpsecError) as exc:
            await s.remote.request("someone-new", AGENT)
        assert exc.value.code is ErrorCode.REMOTE_REFUSED
        await s.clock.advance(901)
        await s.remote.request("someone-new", AGENT)  # the lockout ends


@sync
async def test_a_busy_panel_refuses_and_a_drop_on_a_protected_screen_resets_it(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        s.panel.now = PanelState(user="admin", administrator=True)
        with pytest.raises(MfpsecError) as exc:
            await s.remote.request("operator", AGENT)
        assert exc.value.params["reason"] == "the panel is in administrator mode"
        s.panel.now = PanelState(user="alice")
        with pytest.raises(MfpsecError) as exc:
            await s.remote.request("operator", AGENT)
        assert exc.value.params["reason"] == "a user is logged in at the panel"
        s.panel.now = PanelState()
        session = await _active(s)
        # Someone logs in at the panel: the active session ends at the next tick.
        s.panel.now = PanelState(user="alice")
        await s.remote.tick()
        assert s.remote.requests()[0].end_reason == "ended because a user is logged in at the panel"
        s.panel.now = PanelState()
        session = await _active(s)
        await s.remote.activity(session, sensitive=True)  # a password screen is shown
        s.panel.now = PanelState(user="bob")  # ... and someone authenticates meanwhile
        await s.remote.end(session, "connection lost", AGENT)
        dropped, reset = (await s.records())[-2:]
        assert dropped.details["reset_screen"] is True and dropped.details["logged_out"] == 1
        assert reset.details["phase"] == "screen-reset"
        assert alert_of(DEFAULT_RULES, reset) == "panel screen reset"
        assert alert_of(DEFAULT_RULES, dropped) == "remote session"
        assert s.panel.now == PanelState()  # logged out


@sync
async def test_idle_and_maximum_length_end_sessions(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        idle = await _active(s)
        await s.clock.advance(599)
        await s.remote.tick()
        assert s.remote.seconds_left(s.remote.requests()[0]) == 1
        await s.clock.advance(2)
        await s.remote.tick()
        assert [r.end_reason for r in s.remote.requests() if r.id == idle] == ["idle"]
        busy = await _active(s)
        for _ in range(6):  # in use all along: never idle
            await s.clock.advance(550)
            await s.remote.activity(busy, sensitive=False)
            await s.remote.tick()
        await s.clock.advance(301)  # 3601 s since it started
        with pytest.raises(MfpsecError):  # a call finds the end at once, not at the tick
            await s.remote.activity(busy, sensitive=False)
        await s.remote.tick()  # ... which records it
        ended = {r.id: r.end_reason for r in s.remote.requests()}
        assert ended[busy] == "the maximum session length was reached"
        # An unused code expires, so does a consent nobody gives.
        r = await s.remote.request("operator", AGENT)
        await s.clock.advance(301)
        await s.remote.tick()
        assert r.end_reason == "the access code expired"
        q = await s.remote.request("operator", AGENT)
        await s.remote.present(q.id, q.code, AGENT)
        await s.clock.advance(61)
        await s.remote.tick()
        assert q.end_reason == "nobody approved it at the panel in time"


@sync
async def test_the_manage_window_closes_on_time_across_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    async with stack(tmp_path, clock=clock) as s:
        with pytest.raises(MfpsecError) as exc:
            await s.remote.check(Operation.FIRMWARE_UPDATE, AGENT)
        assert exc.value.code is ErrorCode.REMOTE_MANAGE_REQUIRED
        await s.remote.check(Operation.UPLOAD, AGENT)  # monitor mode uploads
        await s.remote.open_window(30 * 60, ADMIN)
        assert s.remote.mode() is Mode.MANAGE
        await s.remote.check(Operation.FIRMWARE_UPDATE, AGENT)
    await clock.advance(10 * 60)
    async with stack(tmp_path, clock=clock) as s:  # restarted within the window
        assert s.remote.mode() is Mode.MANAGE and s.remote.window.by == "admin"
        await clock.advance(21 * 60)
        await s.remote.tick()
        assert s.remote.mode() is Mode.MONITOR
        with pytest.raises(MfpsecError):
            await s.remote.check(Operation.SETTINGS_CHANGE, AGENT)
        await s.remote.open_window(60, ADMIN)
    await clock.advance(3600)  # the daemon was down when this one ended
    async with stack(tmp_path, clock=clock) as s:
        assert s.remote.mode() is Mode.MONITOR
        modes = [
            (r.details["mode"], r.details.get("reason", r.details.get("refused", "")))
            for r in await s.records(EventType.REMOTE_MODE)
        ]
        assert ("monitor", "the manage window ended") in modes
        assert modes[-1] == ("monitor", "expired while the daemon was down")
        assert ("monitor", "firmware-update") in modes


@sync
async def test_one_remote_session_at_a_time(tmp_path: Path) -> None:
    """The active session's operator sees and drives the panel: no second request gets a
    code shown there, and none is approved, while it lasts."""
    async with stack(tmp_path) as s:
        waiting = await s.remote.request("operator-b", AGENT)
        await s.remote.present(waiting.id, waiting.code, AGENT)  # B waits for consent
        first = await _active(s, "operator-a")
        with pytest.raises(MfpsecError) as exc:
            await s.remote.request("operator-c", AGENT)
        assert exc.value.params["reason"] == "a remote session is active"
        with pytest.raises(MfpsecError) as exc:
            await s.remote.decide(waiting.id, True, PANEL)
        assert exc.value.params["reason"] == "a remote session is active"
        await s.remote.end(first, "done", AGENT)
        await s.remote.request("operator-c", AGENT)  # free again


@sync
async def test_a_wall_clock_stepped_back_closes_the_window(tmp_path: Path) -> None:
    """A power cut resets the RTC to the past before NTP: the window must not stretch."""
    clock = FakeClock()
    async with stack(tmp_path, clock=clock) as s:
        await s.remote.open_window(3600, ADMIN)
        clock.set_wall(-30 * 86400.0)  # a month back
        assert s.remote.mode() is Mode.MONITOR
        await s.remote.tick()
        assert s.remote.window.until == 0  # closed and recorded
        clock.set_wall(30 * 86400.0)
        assert s.remote.mode() is Mode.MONITOR
