"""io.mfpsecd.Monitoring handlers."""

from __future__ import annotations

from mfpsecd.auth.caller import subject_of
from mfpsecd.monitoring import api
from mfpsecd.monitoring.service import MonitoringService
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


class MonitoringHandlers:
    """io.mfpsecd.Monitoring."""

    def __init__(self, monitoring: MonitoringService) -> None:
        self._monitoring = monitoring

    @handles(api.GET_SETTINGS)
    async def get_settings(self, ctx: CallContext, _: NoParams) -> api.Settings:
        return await self._monitoring.view()

    @handles(api.SET_SETTINGS)
    async def set_settings(self, ctx: CallContext, p: api.SetParams) -> api.Settings:
        return await self._monitoring.replace(p.document, subject_of(ctx))

    @handles(api.RESET_SETTINGS)
    async def reset_settings(self, ctx: CallContext, _: NoParams) -> api.Settings:
        return await self._monitoring.reset(subject_of(ctx))
