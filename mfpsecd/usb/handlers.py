"""io.mfpsecd.Usb handlers."""

from __future__ import annotations

from mfpsecd.auth.caller import subject_of
from mfpsecd.base.config.schema import UsbApprovedSection, UsbPortRuleSection, UsbSection
from mfpsecd.usb import api
from mfpsecd.usb.service import Judged, PolicySource, UsbService
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


def device(j: Judged) -> api.Device:
    d = j.device
    return api.Device(
        device=j.seen.name,
        port=j.port,
        vendor="" if d is None else f"{d.vendor:04x}",
        product="" if d is None else f"{d.product:04x}",
        serial=j.seen.serial,
        manufacturer=j.seen.manufacturer,
        product_name=j.seen.product,
        uses=[c.value for c in j.decision.categories],
        allowed=j.decision.allowed,
        rule=j.decision.rule,
        reason=j.decision.reason,
        by=j.by,
        decided_at=j.at,
        enforced=j.enforced,
    )


def policy(source: PolicySource, board_ports: tuple[str, ...]) -> api.Policy:
    s = source.section
    return api.Policy(
        ports=[api.PortRule(r.id, [api.Use(u) for u in r.allow]) for r in s.ports],
        default=[api.Use(u) for u in s.default.allow],
        approved=[api.Approved(a.vendor, a.product, a.serial, a.port) for a in s.approved],
        board_ports=list(board_ports),
        set_by=source.by,
        set_at=source.at,
    )


def section(p: api.PolicyParams) -> UsbSection:
    return UsbSection(
        ports=[UsbPortRuleSection([u.value for u in r.allow], r.port) for r in p.ports],
        default=UsbPortRuleSection([u.value for u in p.default]),
        approved=[
            UsbApprovedSection(a.vendor.lower(), a.product.lower(), a.serial, a.port)
            for a in p.approved
        ],
    )


class UsbHandlers:
    """io.mfpsecd.Usb."""

    def __init__(self, usb: UsbService) -> None:
        self._usb = usb

    @handles(api.LIST_DEVICES)
    async def list_devices(self, ctx: CallContext, _: NoParams) -> api.Devices:
        v = await self._usb.view()
        return api.Devices([device(j) for j in v.devices], list(v.buses), v.locked, v.failure)

    @handles(api.GET_POLICY)
    async def get_policy(self, ctx: CallContext, _: NoParams) -> api.Policy:
        v = await self._usb.view()
        return policy(v.policy, v.board_ports)

    @handles(api.SET_POLICY)
    async def set_policy(self, ctx: CallContext, p: api.PolicyParams) -> api.Policy:
        v = await self._usb.set_policy(section(p), subject_of(ctx))
        return policy(v.policy, v.board_ports)

    @handles(api.ALLOW)
    async def allow(self, ctx: CallContext, p: api.DeviceParams) -> api.Device:
        return device(await self._usb.decide_once(p.device, True, subject_of(ctx)))

    @handles(api.BLOCK)
    async def block(self, ctx: CallContext, p: api.DeviceParams) -> api.Device:
        return device(await self._usb.decide_once(p.device, False, subject_of(ctx)))
