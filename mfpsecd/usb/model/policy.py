"""What each USB port may be used for (SPEC U-1, U-2), and the decision for one device.

A port allows categories of use (mass storage, HID, CCID smart cards, printers, hubs,
network adapters); everything else is `other`, refused unless a port allows it. A device
is judged by every interface of every configuration it offers: all must be allowed on
its port, so a device that mixes an allowed category with a refused one (a "keyboard"
that is also a network adapter: the BadUSB pattern) is refused whole, and a device that
offers no interface at all is refused too.

A site's approved devices (its card readers, say) can be allowed by exact identity:
vendor, product and, when given, serial number and port. Identity is what the device
claims, so an approved identity never opens a network interface on a port that does not
allow network adapters.

Pure: the device's descriptors come in parsed (descriptors.py); the caller enforces.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from mfpsecd.usb.model.descriptors import Interface, UsbDevice


class Category(enum.Enum):
    MASS_STORAGE = "mass_storage"  # 0x08: print from / scan to USB memory
    HID = "hid"  # 0x03: keyboards, and the card readers that type what they read
    CCID = "ccid"  # 0x0B: smart card readers
    PRINTER = "printer"  # 0x07
    HUB = "hub"  # 0x09
    NETWORK = "network"  # CDC (0x02, 0x0A), wireless controllers (0xE0), RNDIS (0xEF/04)
    OTHER = "other"  # everything else: audio, video, vendor specific, DFU, ...


_BY_CLASS = {
    0x08: Category.MASS_STORAGE,
    0x03: Category.HID,
    0x0B: Category.CCID,
    0x07: Category.PRINTER,
    0x09: Category.HUB,
    0x02: Category.NETWORK,
    0x0A: Category.NETWORK,
    0xE0: Category.NETWORK,
}
_MISC, _RNDIS_SUBCLASS = 0xEF, 0x04


def category(interface: Interface) -> Category:
    if interface.cls == _MISC and interface.subclass == _RNDIS_SUBCLASS:
        return Category.NETWORK
    return _BY_CLASS.get(interface.cls, Category.OTHER)


@dataclass(frozen=True)
class PortRule:
    allow: frozenset[Category]


# A port the policy does not name: what an MFP's USB ports are for, and no network.
DEFAULT_RULE = PortRule(
    frozenset({Category.MASS_STORAGE, Category.HID, Category.CCID, Category.PRINTER, Category.HUB})
)


@dataclass(frozen=True)
class ApprovedDevice:
    vendor: int
    product: int
    serial: str = ""  # "": any serial number
    port: str = ""  # "": any port

    def matches(self, port: str, device: UsbDevice, serial: str) -> bool:
        return (
            (self.vendor, self.product) == (device.vendor, device.product)
            and (not self.serial or self.serial == serial)
            and (not self.port or self.port == port)
        )


@dataclass(frozen=True)
class UsbPolicy:
    ports: Mapping[str, PortRule] = field(default_factory=dict)  # by the board's port name
    default: PortRule = DEFAULT_RULE
    approved: tuple[ApprovedDevice, ...] = ()

    def rule(self, port: str) -> PortRule:
        return self.ports.get(port, self.default)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # which rule decided: "approved[0]", "port rear: mass_storage, hub", ...
    reason: str  # for people (audit record, `mfpsec usb show`)
    categories: tuple[Category, ...]  # what the device offers, in a stable order


def _names(categories: set[Category]) -> str:
    return ", ".join(sorted(c.value for c in categories))


def decide(policy: UsbPolicy, port: str, device: UsbDevice, serial: str = "") -> Decision:
    offered = {category(i) for i in device.interfaces}
    shown = tuple(sorted(offered, key=lambda c: c.value))
    rule = policy.rule(port)
    where = f"port {port}" if port in policy.ports else f"port {port} (default rule)"
    if not offered:
        return Decision(False, where, "the device offers no interface", shown)
    for n, approved in enumerate(policy.approved):
        if approved.matches(port, device, serial):
            if Category.NETWORK in offered and Category.NETWORK not in rule.allow:
                return Decision(
                    False,
                    f"approved[{n}]",
                    f"approved as {device.identity}, but it offers a network interface, "
                    f"which {where} does not allow",
                    shown,
                )
            return Decision(True, f"approved[{n}]", f"approved device {device.identity}", shown)
    refused = offered - rule.allow
    if not refused:
        return Decision(True, where, f"{_names(offered)} allowed on {where}", shown)
    if offered & rule.allow:
        reason = (
            f"mixes {_names(offered & rule.allow)} (allowed) with {_names(refused)} (refused on "
            f"{where}): a device that is more than it claims is refused whole"
        )
    else:
        reason = f"{_names(refused)} not allowed on {where}"
    return Decision(False, where, reason, shown)
