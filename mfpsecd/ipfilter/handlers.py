"""io.mfpsecd.Network handlers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Literal

from mfpsecd.daemon.auth_handlers import remote_address, subject_of
from mfpsecd.daemon.store_handlers import passed_descriptor
from mfpsecd.ipfilter import api
from mfpsecd.ipfilter import service as svc
from mfpsecd.ipfilter.model import ruleset as nf
from mfpsecd.services.transfer import PolledReader
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.schema import NoParams
from mfpsecd.varlink.server import CallContext, Handler


def _rules(v: svc.NetView, offset: int = 0, limit: int = api.PAGE) -> api.Rules:
    """The view with each list of ranges cut to the page (the whole lists can hold
    100,000 ranges: a reply stays the same size)."""
    p = v.policy
    end = offset + limit

    def page(ranges: Sequence[nf.Range]) -> list[str]:
        return [str(r) for r in ranges[offset:end]]

    return api.Rules(
        permitted=page(p.allow), refused=page(p.deny),
        effective_permitted=page(v.effective_allow), effective_refused=page(v.effective_deny),
        quick=p.quick, quick_ranges=[str(r) for r in nf.quick_ranges(v.device)],
        addresses=[str(a) for a in v.device.addresses],
        services=[api.ServiceState(s.name, [f"{proto}/{port}" for proto, port in s.ports],
                                   s.name in p.enabled) for s in v.services],
        wired=list(v.device.wired), wireless=list(v.device.wireless), in_kernel=v.in_kernel,
        applied_at=v.applied_at, permitted_total=len(p.allow), refused_total=len(p.deny),
        effective_permitted_total=len(v.effective_allow),
        effective_refused_total=len(v.effective_deny),
        banned=[api.BanInfo(str(b.range), b.left_s) for b in v.banned])


Params = api.RangeParams | api.QuickParams | api.PortParams


def network_handlers(net: svc.NetfilterService, channel: FdChannel) -> dict[str, Handler]:
    async def get_rules(ctx: CallContext, q: api.RulesQuery) -> api.Rules:
        return _rules(await net.view(), q.offset, q.limit)

    def changing(what: Callable[[Params], tuple[str, Callable[[nf.Policy], nf.Policy]]]
                 ) -> Handler:
        async def handler(ctx: CallContext, p: Params) -> api.Rules:
            address = remote_address(ctx, p.remote_address)
            label, change = what(p)
            return _rules(await net.change(label, change, subject_of(ctx, address),
                                           remote_address=address, confirm=p.confirm))
        return handler

    def ranged(op: Literal["allow", "deny", "remove"]) -> Handler:
        async def handler(ctx: CallContext, p: api.RangeParams) -> api.Rules:
            address = remote_address(ctx, p.remote_address)
            return _rules(await net.edit_range(op, p.range, subject_of(ctx, address),
                                               remote_address=address, confirm=p.confirm))
        return handler

    async def unban(ctx: CallContext, p: api.RangeParams) -> api.Rules:
        address = remote_address(ctx, p.remote_address)
        return _rules(await net.unban(p.range, subject_of(ctx, address)))

    async def import_ranges(ctx: CallContext, p: api.ImportParams) -> api.Imported:
        address = remote_address(ctx, p.remote_address)
        fd = passed_descriptor(channel, ctx, p.descriptor, writing=False)
        try:
            text = await net.read_import(PolledReader(fd))
        finally:
            os.close(fd)
        which: svc.ListName = "allow" if p.list is api.RangeList.PERMITTED else "deny"
        view, n = await net.import_ranges(which, text, subject_of(ctx, address),
                                          replace_list=p.replace, remote_address=address,
                                          confirm=p.confirm)
        return api.Imported(n.ranges, n.added, n.unchanged, n.removed, n.duplicates,
                            _rules(view))

    def quick(p: Params) -> tuple[str, Callable[[nf.Policy], nf.Policy]]:
        assert isinstance(p, api.QuickParams)
        return f"quick {'on' if p.on else 'off'}", svc.quick(p.on)

    def port(p: Params) -> tuple[str, Callable[[nf.Policy], nf.Policy]]:
        assert isinstance(p, api.PortParams)
        return f"port {p.service} {'on' if p.on else 'off'}", svc.port(p.service, p.on)

    async def apply(ctx: CallContext, _: NoParams) -> api.Rules:
        return _rules(await net.reapply(subject_of(ctx)))

    async def preview(ctx: CallContext, _: NoParams) -> api.Ruleset:
        return api.Ruleset(json.dumps({"nftables": net.preview(lambda p: p)}, indent=1))

    n = "io.mfpsecd.Network."
    return {n + "GetRules": get_rules, n + "Allow": ranged("allow"),
            n + "Deny": ranged("deny"), n + "Remove": ranged("remove"),
            n + "Import": import_ranges, n + "Unban": unban,
            n + "SetQuick": changing(quick), n + "SetPort": changing(port),
            n + "Apply": apply, n + "Preview": preview}

