"""io.mfpsecd.Network handlers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Literal

from mfpsecd.auth.caller import remote_address, subject_of
from mfpsecd.base.addresses import Range
from mfpsecd.base.transfer import PolledReader
from mfpsecd.ipfilter import api
from mfpsecd.ipfilter import service as svc
from mfpsecd.ipfilter.model import ruleset as nf
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


def _rules(v: svc.NetView, offset: int = 0, limit: int = api.PAGE) -> api.Rules:
    """The view with each list of ranges cut to the page (the whole lists can hold
    100,000 ranges: a reply stays the same size)."""
    p = v.policy
    end = offset + limit

    def page(ranges: Sequence[Range]) -> list[str]:
        return [str(r) for r in ranges[offset:end]]

    return api.Rules(
        permitted=page(p.allow),
        refused=page(p.deny),
        effective_permitted=page(v.effective_allow),
        effective_refused=page(v.effective_deny),
        quick=p.quick,
        quick_ranges=[str(r) for r in nf.quick_ranges(v.device)],
        addresses=[str(a) for a in v.device.addresses],
        services=[
            api.ServiceState(
                s.name, [f"{proto}/{port}" for proto, port in s.ports], s.name in p.enabled
            )
            for s in v.services
        ],
        wired=list(v.device.wired),
        wireless=list(v.device.wireless),
        in_kernel=v.in_kernel,
        applied_at=v.applied_at,
        permitted_total=len(p.allow),
        refused_total=len(p.deny),
        effective_permitted_total=len(v.effective_allow),
        effective_refused_total=len(v.effective_deny),
        banned=[api.BanInfo(str(b.range), b.left_s) for b in v.banned],
    )


class NetworkHandlers:
    """io.mfpsecd.Network."""

    def __init__(self, net: svc.NetfilterService, channel: FdChannel) -> None:
        self._net = net
        self._channel = channel

    @handles(api.GET_RULES)
    async def get_rules(self, ctx: CallContext, q: api.RulesQuery) -> api.Rules:
        return _rules(await self._net.view(), q.offset, q.limit)

    async def _edit(
        self, ctx: CallContext, op: Literal["allow", "deny", "remove"], p: api.RangeParams
    ) -> api.Rules:
        address = remote_address(ctx, p.remote_address)
        return _rules(
            await self._net.edit_range(
                op, p.range, subject_of(ctx, address), remote_address=address, confirm=p.confirm
            )
        )

    @handles(api.ALLOW)
    async def allow(self, ctx: CallContext, p: api.RangeParams) -> api.Rules:
        return await self._edit(ctx, "allow", p)

    @handles(api.DENY)
    async def deny(self, ctx: CallContext, p: api.RangeParams) -> api.Rules:
        return await self._edit(ctx, "deny", p)

    @handles(api.REMOVE)
    async def remove(self, ctx: CallContext, p: api.RangeParams) -> api.Rules:
        return await self._edit(ctx, "remove", p)

    @handles(api.UNBAN)
    async def unban(self, ctx: CallContext, p: api.RangeParams) -> api.Rules:
        address = remote_address(ctx, p.remote_address)
        return _rules(await self._net.unban(p.range, subject_of(ctx, address)))

    @handles(api.IMPORT)
    async def import_ranges(self, ctx: CallContext, p: api.ImportParams) -> api.Imported:
        address = remote_address(ctx, p.remote_address)
        fd = self._channel.take_for(p.descriptor, ctx.peer.uid, writing=False)
        try:
            text = await self._net.read_import(PolledReader(fd))
        finally:
            os.close(fd)
        which: svc.ListName = "allow" if p.list is api.RangeList.PERMITTED else "deny"
        view, n = await self._net.import_ranges(
            which,
            text,
            subject_of(ctx, address),
            replace_list=p.replace,
            remote_address=address,
            confirm=p.confirm,
        )
        return api.Imported(n.ranges, n.added, n.unchanged, n.removed, n.duplicates, _rules(view))

    async def _change(
        self,
        ctx: CallContext,
        p: api.QuickParams | api.PortParams,
        label: str,
        change: Callable[[nf.Policy], nf.Policy],
    ) -> api.Rules:
        address = remote_address(ctx, p.remote_address)
        return _rules(
            await self._net.change(
                label, change, subject_of(ctx, address), remote_address=address, confirm=p.confirm
            )
        )

    @handles(api.SET_QUICK)
    async def set_quick(self, ctx: CallContext, p: api.QuickParams) -> api.Rules:
        return await self._change(ctx, p, f"quick {'on' if p.on else 'off'}", svc.quick(p.on))

    @handles(api.SET_PORT)
    async def set_port(self, ctx: CallContext, p: api.PortParams) -> api.Rules:
        return await self._change(
            ctx, p, f"port {p.service} {'on' if p.on else 'off'}", svc.port(p.service, p.on)
        )

    @handles(api.APPLY)
    async def apply(self, ctx: CallContext, _: NoParams) -> api.Rules:
        return _rules(await self._net.reapply(subject_of(ctx)))

    @handles(api.PREVIEW)
    async def preview(self, ctx: CallContext, _: NoParams) -> api.Ruleset:
        return api.Ruleset(json.dumps({"nftables": self._net.preview(lambda p: p)}, indent=1))
