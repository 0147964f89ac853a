"""What the USB service needs from the machine: the devices on the board's buses as sysfs
shows them, the kernel's authorization switch per device and per bus, and a tick when
devices come or go (SPEC U-2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SeenDevice:
    """A USB device as the kernel shows it: raw descriptors and strings, all of them the
    device's own word (untrusted)."""

    name: str  # the kernel's name: "1-1.2" (bus 1, port 1, then port 2 of a hub)
    path: str  # its device path under the sysfs root: "devices/pci0000:00/…/usb1/1-1/1-1.2"
    descriptors: bytes  # sysfs `descriptors`: the device's and every configuration's
    serial: str
    manufacturer: str
    product: str
    authorized: bool  # what the kernel holds now


class DeviceGone(Exception):
    """The device went away (unplugged) while it was being read or decided."""


class UsbBus(Protocol):
    def lock(self) -> list[str]:
        """authorized_default = 0 on every bus: no device plugged in from now on gets a
        driver until it is authorized. → the buses ("usb1", …). OSError when the kernel
        refuses."""
        ...

    def locked(self) -> bool:
        """Every bus still holds authorized_default = 0."""
        ...

    def devices(self) -> list[SeenDevice]:
        """Every device but the buses' root hubs, skipping those that go away meanwhile."""
        ...

    def authorize(self, name: str, allowed: bool) -> None:
        """Write the device's `authorized`. DeviceGone when it went away; OSError when
        the kernel refuses."""
        ...

    def changes(self) -> AsyncIterator[None]:
        """Yields when devices may have come or gone (and now and then regardless)."""
        ...

    def close(self) -> None: ...
