"""The USB port policy's part of the S-1 posture: on when the kernel holds it (every bus
locked, every decision taken) and no port allows network adapters or unknown classes."""

from __future__ import annotations

from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.usb.service import UsbView

_OPEN = {"network", "other"}  # what a port should not allow unless the site means it


def usb_ports(view: UsbView) -> PostureItem:
    s = view.policy.section
    rules = [(r.id, r.allow) for r in s.ports] + [("other ports", s.default.allow)]
    setting = "; ".join(f"{port}: {', '.join(allow) or 'nothing'}" for port, allow in rules)
    if s.approved:
        setting += f"; {len(s.approved)} approved device(s)"
    if not view.buses:
        return PostureItem(PostureId.USB_PORTS, PostureState.NOT_APPLICABLE, setting, "no USB bus")
    if view.failure or not view.locked:
        why = view.failure or "a bus lets new devices bind drivers before they are judged"
        return PostureItem(PostureId.USB_PORTS, PostureState.OFF, setting, why)
    opened = sorted({port for port, allow in rules if _OPEN & set(allow)})
    if opened:
        return PostureItem(
            PostureId.USB_PORTS,
            PostureState.ON,
            setting,
            f"network adapters or other classes are allowed on {', '.join(opened)}",
        )
    return PostureItem(PostureId.USB_PORTS, PostureState.ON, setting)
