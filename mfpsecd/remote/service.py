"""The device's side of remote operation (SPEC R-1..R-6): the policy decision point the
remote-panel agent and the fleet agent must ask over IPC.

Remote panel sessions: the agent (on the device, connected outwards) asks for one; the
daemon refuses while the function is off or the panel is busy with a person's own
authentication (administrator mode, a user logged in), else makes a one-time access code
the panel shows. The remote side presents the code through the agent (wrong codes count
against the remote identity and against everyone, and lock out like wrong passwords);
the person at the panel approves or denies; the session then lasts until either side
ends it, it idles, it reaches its maximum length, or the panel becomes busy. A session
that drops while a password or protected screen is shown tells the panel to reset the
screen, and the person logged in there is logged out.

The fleet agent is in monitor mode (one-way uploads) unless an administrator opened a
manage window, kept in the state store so it closes on time across restarts.

Everything is audited (remote.session, remote.mode); the panel sees it on its stream.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Detail, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.access import Privilege
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.clock import Clock, utc_text
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.remote.model.manage_window import (
    MANAGE_PRIVILEGES,
    MAX_WINDOW_S,
    ManageWindow,
    Mode,
    Operation,
)
from mfpsecd.remote.model.sessions import (
    CodeGuard,
    PanelState,
    Phase,
    RemotePolicy,
    Request,
    deadline_passed,
    new_code,
    refusal,
)

log = structlog.get_logger("mfpsecd.remote")
TICK_S = 1.0
MAX_OPEN = 16  # requests and sessions at once
KEEP_ENDED = 32  # ended ones kept for the panel to read why


@dataclass(frozen=True)
class PanelHooks:
    """What the service needs of the panel's sessions (auth): who is logged in at the
    panel now, and logging them out."""

    state: Callable[[], PanelState]
    log_out: Callable[[], int]


def _load(conn: StateConnection) -> ManageWindow:
    row = conn.execute("SELECT until, by_user, opened FROM remote_manage WHERE id = 1").fetchone()
    if row is None:
        return ManageWindow()
    return ManageWindow(float(str(row[0])), str(row[1]), float(str(row[2])))


def _save(conn: StateConnection, w: ManageWindow) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO remote_manage (id, until, by_user, opened) VALUES (1, ?, ?, ?)",
        (w.until, w.by, w.opened),
    )


class RemoteService:
    def __init__(
        self,
        state: StateStore,
        *,
        auditor: Auditor,
        clock: Clock,
        policy: RemotePolicy,
        panel: PanelHooks,
    ) -> None:
        self._state = state
        self._auditor = auditor
        self._clock = clock
        self.policy = policy
        self._panel = panel
        self._guard = CodeGuard(policy)
        self._requests: dict[str, Request] = {}
        # Ends a call found (a deadline passed), recorded at the next tick.
        self._unrecorded: list[tuple[Request, str, tuple[Phase, bool, int]]] = []
        self._window = ManageWindow()

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        self._window = await self._state.run(_load)
        now = self._clock.now().timestamp()
        if self._window.until and self._window.mode(now) is Mode.MONITOR:
            await self._close_window("expired while the daemon was down")

    async def run(self) -> None:
        """Deadlines: codes, consent, idle and maximum length, the manage window, and a
        panel that became busy under an active session."""
        while True:
            await self.tick()
            await self._clock.sleep(TICK_S)

    async def tick(self) -> None:
        """Each end is made before it is recorded: a record that cannot be written (the
        audit log full, say) is logged and the loop goes on."""
        now = self._clock.monotonic()
        busy = refusal(self._panel.state())
        ends, self._unrecorded = self._unrecorded, []
        for r in list(self._live()):
            why = deadline_passed(r, self.policy, now)
            if not why and busy and r.phase is Phase.ACTIVE:
                why = f"ended because {busy}"
            if why:
                ends.append((r, why, self._close(r, why)))
        for r, why, closed in ends:
            try:
                await self._record_end(r, why, DAEMON, closed)
            except (MfpsecError, RuntimeError) as exc:
                log.error("remote_end_not_recorded", request=r.id, reason=str(exc))
        if self._window.until and self._window.mode(self._clock.now().timestamp()) is Mode.MONITOR:
            try:
                await self._close_window("the manage window ended")
            except (MfpsecError, RuntimeError) as exc:
                log.error("remote_window_close_not_recorded", reason=str(exc))

    # ---------------------------------------------------------------- the agent's side

    def _session_active(self) -> str:
        """Why no other session may start: one is active, and its remote operator sees
        and drives the panel, so must not be the "person at the panel" who reads another
        request's code or approves it ("" when none is active)."""
        if any(r.phase is Phase.ACTIVE for r in self._requests.values()):
            return "a remote session is active"
        return ""

    def _live(self) -> list[Request]:
        return [r for r in self._requests.values() if r.phase is not Phase.ENDED]

    def _find(self, request_id: str, *phases: Phase) -> Request:
        """The request in one of these phases, its deadlines checked now (not only at the
        next tick)."""
        r = self._requests.get(request_id)
        now = self._clock.monotonic()
        if (
            r is not None
            and r.phase is not Phase.ENDED
            and (why := deadline_passed(r, self.policy, now))
        ):
            self._unrecorded.append((r, why, self._close(r, why)))
        if r is None or r.phase not in phases:
            raise MfpsecError(ErrorCode.REMOTE_REQUEST_NOT_FOUND, request=request_id)
        return r

    async def request(self, remote: str, subject: Subject) -> Request:
        """R-1, R-2, R-3: a new request with its code, or RemoteRefused with why."""
        now = self._clock.monotonic()
        if not self.policy.enabled:
            why = "remote panel sessions are switched off (remote.enabled)"
        elif why := refusal(self._panel.state()):
            pass
        elif left := self._guard.locked(remote, now):
            why = f"locked out for {left:.0f} s after wrong access codes"
        elif not (why := self._session_active()) and len(self._live()) >= MAX_OPEN:
            why = f"{MAX_OPEN} requests and sessions are open"
        if why:
            await self._record("request", Outcome.FAILURE, subject, "", remote=remote, reason=why)
            raise MfpsecError(ErrorCode.REMOTE_REFUSED, reason=why)
        r = Request(secrets.token_hex(8), remote, new_code(self.policy.code_length), now)
        r.last_activity = now
        self._requests[r.id] = r
        self._trim()
        await self._record("request", Outcome.SUCCESS, subject, r.id, remote=remote)
        return r

    async def present(self, request_id: str, code: str, subject: Subject) -> Request:
        """The remote side's code: right once, then the panel decides."""
        now = self._clock.monotonic()
        r = self._find(request_id, Phase.CODE)
        if left := self._guard.locked(r.remote, now):
            await self._record(
                "code", Outcome.FAILURE, subject, r.id, remote=r.remote, reason="locked out"
            )
            raise MfpsecError(ErrorCode.REMOTE_LOCKED_OUT, seconds=int(left) + 1)
        if not r.code_matches(code):
            r.wrong += 1
            locked = self._guard.failure(r.remote, now)
            wrong = r.wrong
            # Void at once, before any await: a concurrent guess must not find it open.
            ended = None
            if wrong >= self.policy.tries_per_code or locked:
                ended = self._close(r, "too many wrong access codes")
            await self._record(
                "code",
                Outcome.FAILURE,
                subject,
                r.id,
                remote=r.remote,
                wrong=wrong,
                locked=",".join(locked),
            )
            if ended is not None:
                await self._record_end(r, r.end_reason, DAEMON, ended)
            if locked:
                raise MfpsecError(ErrorCode.REMOTE_LOCKED_OUT, seconds=int(self.policy.lockout_s))
            raise MfpsecError(
                ErrorCode.REMOTE_CODE_WRONG, tries_left=max(self.policy.tries_per_code - wrong, 0)
            )
        r.phase, r.decided = Phase.CONSENT, now
        r.code = ""  # single use
        await self._record("code", Outcome.SUCCESS, subject, r.id, remote=r.remote)
        return r

    async def activity(self, request_id: str, *, sensitive: bool) -> Request:
        r = self._find(request_id, Phase.ACTIVE)
        r.last_activity = self._clock.monotonic()
        r.sensitive = sensitive
        return r

    async def end(self, request_id: str, reason: str, subject: Subject) -> Request:
        r = self._find(request_id, Phase.CODE, Phase.CONSENT, Phase.ACTIVE)
        await self._end(r, reason, subject)
        return r

    # ---------------------------------------------------------------- the panel's side

    def seconds_left(self, r: Request) -> int:
        """Until the code expires, consent times out, or the session idles out."""
        now, p = self._clock.monotonic(), self.policy
        left = {
            Phase.CODE: r.created + p.code_ttl_s - now,
            Phase.CONSENT: r.decided + p.consent_ttl_s - now,
            Phase.ACTIVE: min(r.last_activity + p.idle_s, r.started + p.max_s) - now,
        }.get(r.phase, 0.0)
        return max(int(left + 0.999), 0)

    def requests(self) -> list[Request]:
        """Open requests and sessions, then the last ended ones (for why they ended)."""
        return sorted(self._requests.values(), key=lambda r: (r.phase is Phase.ENDED, r.created))

    async def decide(self, request_id: str, approve: bool, subject: Subject) -> Request:
        r = self._find(request_id, Phase.CONSENT)
        if approve:
            if why := refusal(self._panel.state()) or self._session_active():
                await self._end(r, why, DAEMON)
                raise MfpsecError(ErrorCode.REMOTE_REFUSED, reason=why)
            now = self._clock.monotonic()
            r.phase, r.started, r.last_activity = Phase.ACTIVE, now, now
            await self._record("connect", Outcome.SUCCESS, subject, r.id, remote=r.remote)
        else:
            await self._end(r, "denied at the panel", subject)
        return r

    # ---------------------------------------------------------------- the fleet agent

    @property
    def window(self) -> ManageWindow:
        return self._window

    def mode(self) -> Mode:
        return self._window.mode(self._clock.now().timestamp())

    def granted_for_now(self, peer_class: PeerClass) -> frozenset[Privilege]:
        """R-5: the fleet agent's privileges of a manage window, while one is open."""
        if peer_class is PeerClass.FLEET_AGENT and self.mode() is Mode.MANAGE:
            return MANAGE_PRIVILEGES
        return frozenset()

    async def open_window(self, seconds: float, subject: Subject) -> ManageWindow:
        if not 0 < seconds <= MAX_WINDOW_S:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="minutes")
        now = self._clock.now().timestamp()
        w = ManageWindow(now + seconds, subject.user or subject.origin, now)
        await self._state.run(lambda c: _save(c, w))
        self._window = w
        await self._record_mode(
            Outcome.SUCCESS, subject, "manage", until=self.until_text(w), by=w.by
        )
        return w

    async def close_window(self, subject: Subject) -> ManageWindow:
        await self._close_window("closed by an administrator", subject)
        return self._window

    async def _close_window(self, why: str, subject: Subject = DAEMON) -> None:
        w = ManageWindow()
        await self._state.run(lambda c: _save(c, w))
        self._window = w
        await self._record_mode(Outcome.SUCCESS, subject, "monitor", reason=why)

    async def check(self, op: Operation, subject: Subject) -> None:
        """R-5: OperationRefused outside a manage window for what needs one."""
        if self._window.allows(op, self._clock.now().timestamp()):
            return
        await self._record_mode(Outcome.FAILURE, subject, "monitor", refused=op.value)
        raise MfpsecError(ErrorCode.REMOTE_MANAGE_REQUIRED, operation=op.value)

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def until_text(w: ManageWindow) -> str:
        """The window's end as RFC 3339 UTC ("" in monitor mode)."""
        return utc_text(dt.datetime.fromtimestamp(w.until, dt.UTC), "seconds") if w.until else ""

    def _close(self, r: Request, why: str) -> tuple[Phase, bool, int]:
        """End it now, before any await: nothing can use it in between. → (the phase it
        was in, whether the panel must reset its screen, users logged out there)."""
        was = r.phase
        r.phase, r.end_reason, r.ended_at, r.code = Phase.ENDED, why, self._clock.monotonic(), ""
        reset = was is Phase.ACTIVE and r.sensitive
        return was, reset, self._panel.log_out() if reset else 0

    async def _end(self, r: Request, why: str, subject: Subject) -> None:
        await self._record_end(r, why, subject, self._close(r, why))

    async def _record_end(
        self, r: Request, why: str, subject: Subject, closed: tuple[Phase, bool, int]
    ) -> None:
        was, reset, logged_out = closed
        await self._record(
            "disconnect" if was is Phase.ACTIVE else "cancel",
            Outcome.SUCCESS,
            subject,
            r.id,
            remote=r.remote,
            reason=why,
            reset_screen=reset,
            logged_out=logged_out,
        )
        if reset:
            # its own record, so the panel's stream (which shows no details) has an
            # event of its own to reset the screen on.
            await self._record("screen-reset", Outcome.SUCCESS, DAEMON, r.id, logged_out=logged_out)

    def _trim(self) -> None:
        ended = [k for k, r in self._requests.items() if r.phase is Phase.ENDED]
        for k in ended[: max(len(ended) - KEEP_ENDED, 0)]:
            del self._requests[k]

    async def _record(
        self, phase: str, outcome: Outcome, subject: Subject, obj: str, **details: Detail
    ) -> None:
        await self._auditor.record(
            EventType.REMOTE_SESSION,
            outcome,
            subject,
            obj or "remote panel",
            phase=phase,
            **details,
        )

    async def _record_mode(
        self, outcome: Outcome, subject: Subject, mode: str, **details: Detail
    ) -> None:
        await self._auditor.record(
            EventType.REMOTE_MODE, outcome, subject, "fleet agent", mode=mode, **details
        )
