"""io.mfpsecd.Network handlers."""

from __future__ import annotations

import json
from collections.abc import Callable

from mfpsecd.api import network as api
from mfpsecd.api.schema import NoParams
from mfpsecd.core import netfilter as nf
from mfpsecd.daemon.auth_handlers import remote_address, subject_of
from mfpsecd.daemon.ipc_server import CallContext, Handler
from mfpsecd.services import netfilter as svc


def _rules(v: svc.NetView) -> api.Rules:
    p = v.policy
    return api.Rules(
        permitted=[str(r) for r in p.allow], refused=[str(r) for r in p.deny],
        effective_permitted=[str(r) for r in nf.merge(p.allow)],
        effective_refused=[str(r) for r in nf.merge(p.deny)],
        quick=p.quick, quick_ranges=[str(r) for r in nf.quick_ranges(v.device)],
        addresses=[str(a) for a in v.device.addresses],
        services=[api.ServiceState(s.name, [f"{proto}/{port}" for proto, port in s.ports],
                                   s.name in p.enabled) for s in v.services],
        wired=list(v.device.wired), wireless=list(v.device.wireless), in_kernel=v.in_kernel,
        applied_at=v.applied_at)


Params = api.RangeParams | api.QuickParams | api.PortParams


def network_handlers(net: svc.NetfilterService) -> dict[str, Handler]:
    async def get_rules(ctx: CallContext, _: NoParams) -> api.Rules:
        return _rules(await net.view())

    def changing(what: Callable[[Params], tuple[str, Callable[[nf.Policy], nf.Policy]]]
                 ) -> Handler:
        async def handler(ctx: CallContext, p: Params) -> api.Rules:
            address = remote_address(ctx, p.remote_address)
            label, change = what(p)
            return _rules(await net.change(label, change, subject_of(ctx, address),
                                           remote_address=address, confirm=p.confirm))
        return handler

    def ranged(kind: str, fn: Callable[[str], Callable[[nf.Policy], nf.Policy]]
               ) -> Handler:
        def what(p: Params) -> tuple[str, Callable[[nf.Policy], nf.Policy]]:
            assert isinstance(p, api.RangeParams)
            return f"{kind} {p.range}", fn(p.range)
        return changing(what)

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
    return {n + "GetRules": get_rules, n + "Allow": ranged("allow", svc.allow),
            n + "Deny": ranged("deny", svc.deny), n + "Remove": ranged("remove", svc.remove),
            n + "SetQuick": changing(quick), n + "SetPort": changing(port),
            n + "Apply": apply, n + "Preview": preview}

