"""io.mfpsecd.Remote handlers."""

from __future__ import annotations

from mfpsecd.auth.caller import subject_of
from mfpsecd.base.admission import PeerClass
from mfpsecd.remote import api
from mfpsecd.remote.model.manage_window import Mode, Operation
from mfpsecd.remote.model.sessions import Phase, Request
from mfpsecd.remote.service import RemoteService
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


class RemoteHandlers:
    """io.mfpsecd.Remote."""

    def __init__(self, remote: RemoteService) -> None:
        self._remote = remote

    def _wire(self, r: Request, *, code: bool = False) -> api.RemoteRequest:
        return api.RemoteRequest(
            id=r.id,
            remote=r.remote,
            phase=r.phase.value,
            code=r.code if code and r.phase is Phase.CODE else "",
            seconds_left=self._remote.seconds_left(r),
            sensitive=r.sensitive,
            end_reason=r.end_reason,
        )

    def _mode(self) -> api.Mode:
        w, mode = self._remote.window, self._remote.mode()
        manage = mode is Mode.MANAGE
        return api.Mode(
            mode.value, self._remote.until_text(w) if manage else "", w.by if manage else ""
        )

    @handles(api.GET_REQUESTS)
    async def get_requests(self, ctx: CallContext, _: NoParams) -> api.Requests:
        # The code is for the person at the device: the panel shows it; nobody else
        # (an administrator's CLI, root) may read it.
        panel = ctx.peer_class is PeerClass.PANEL
        mode = self._mode()
        return api.Requests(
            [self._wire(r, code=panel) for r in self._remote.requests()],
            self._remote.policy.enabled,
            mode.mode,
            mode.until,
        )

    @handles(api.APPROVE)
    async def approve(self, ctx: CallContext, p: api.RequestParams) -> api.RemoteRequest:
        return self._wire(await self._remote.decide(p.request, True, subject_of(ctx)))

    @handles(api.DENY)
    async def deny(self, ctx: CallContext, p: api.RequestParams) -> api.RemoteRequest:
        return self._wire(await self._remote.decide(p.request, False, subject_of(ctx)))

    @handles(api.DISCONNECT)
    async def disconnect(self, ctx: CallContext, p: api.RequestParams) -> api.RemoteRequest:
        who = subject_of(ctx)
        why = f"ended at the device by {who.user or who.origin}"
        return self._wire(await self._remote.end(p.request, why, who))

    @handles(api.REQUEST_SESSION)
    async def request_session(self, ctx: CallContext, p: api.SessionParams) -> api.RemoteRequest:
        return self._wire(await self._remote.request(p.remote, subject_of(ctx)))

    @handles(api.PRESENT_CODE)
    async def present_code(self, ctx: CallContext, p: api.CodeParams) -> api.RemoteRequest:
        return self._wire(await self._remote.present(p.request, p.code, subject_of(ctx)))

    @handles(api.ACTIVITY)
    async def activity(self, ctx: CallContext, p: api.ActivityParams) -> api.RemoteRequest:
        return self._wire(await self._remote.activity(p.request, sensitive=p.sensitive))

    @handles(api.END_SESSION)
    async def end_session(self, ctx: CallContext, p: api.EndParams) -> api.RemoteRequest:
        return self._wire(await self._remote.end(p.request, p.reason, subject_of(ctx)))

    @handles(api.GET_MODE)
    async def get_mode(self, ctx: CallContext, _: NoParams) -> api.Mode:
        return self._mode()

    @handles(api.CHECK_OPERATION)
    async def check_operation(self, ctx: CallContext, p: api.OperationParams) -> api.Mode:
        await self._remote.check(Operation(p.operation), subject_of(ctx))
        return self._mode()

    @handles(api.SET_MANAGE_WINDOW)
    async def set_manage_window(self, ctx: CallContext, p: api.WindowParams) -> api.Mode:
        if p.minutes:
            await self._remote.open_window(p.minutes * 60.0, subject_of(ctx))
        else:
            await self._remote.close_window(subject_of(ctx))
        return self._mode()
