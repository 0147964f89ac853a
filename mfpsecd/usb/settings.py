"""The USB policy from the configuration ([usb] in mfpsecd.toml): what the decision
model (model/policy.py) takes."""

from __future__ import annotations

from mfpsecd.base.config.schema import UsbPortRuleSection, UsbSection
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.usb.model.policy import ApprovedDevice, Category, PortRule, UsbPolicy


def _rule(section: UsbPortRuleSection) -> PortRule:
    return PortRule(frozenset(Category(use) for use in section.allow))


def policy_from(section: UsbSection) -> UsbPolicy:
    """CONFIG_INVALID naming the key for a port rule without an id, or a second rule
    for the same port."""
    ports: dict[str, PortRule] = {}
    for n, port in enumerate(section.ports):
        if not port.id or port.id in ports:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                key=f"usb.ports[{n}].id",
                reason="missing" if not port.id else f"a second rule for port {port.id}",
            )
        ports[port.id] = _rule(port)
    return UsbPolicy(
        ports=ports,
        default=_rule(section.default),
        approved=tuple(
            ApprovedDevice(int(a.vendor, 16), int(a.product, 16), a.serial, a.port)
            for a in section.approved
        ),
    )
