"""The kernel's USB authorization through sysfs (SPEC U-2), and hotplug from udev.

Every bus (root hub `usbN`) gets authorized_default = 0, so a device plugged in stays
without drivers until the daemon writes its `authorized`; the daemon reads the device's
raw descriptors from sysfs, decides, and writes 1 or 0. A device the daemon has not
decided yet is therefore refused, not allowed: a missed uevent only delays a device, and
the periodic rescan finds it. Writing 0 to a device that has drivers unbinds them.

udev events are the trigger (pyudev); the rescan every RESCAN_S also covers a
controller without udevd. The sysfs root is the board's (paths.sys_root): umockdev's
testbed in the tests, /sys on a device.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pyudev
import structlog

from mfpsecd.base.clock import Clock
from mfpsecd.base.waits import first_of
from mfpsecd.usb.ports import DeviceGone, SeenDevice

log = structlog.get_logger("mfpsecd.usb")

RESCAN_S = 2.0
MAX_DESCRIPTORS = 64 * 1024  # sysfs caps them too; a hostile device cannot make us read more
MAX_STRING = 256  # bytes of a string descriptor kept (USB allows 126 UTF-16 characters)
_GONE = (errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN)


def _text(raw: bytes) -> str:
    return raw[:MAX_STRING].decode("utf-8", "replace").rstrip("\n")


class SysfsUsbBus:
    def __init__(self, sys_root: Path, clock: Clock, *, watch_udev: bool = True) -> None:
        self._devices = sys_root / "bus" / "usb" / "devices"
        self._sys_root = sys_root
        self._clock = clock
        self._watch_udev = watch_udev
        self._monitor: pyudev.Monitor | None = None

    def _entries(self) -> list[str]:
        try:
            return sorted(os.listdir(self._devices))
        except FileNotFoundError:
            return []

    def _buses(self) -> list[str]:
        return [n for n in self._entries() if n.startswith("usb")]

    def lock(self) -> list[str]:
        buses = self._buses()
        for bus in buses:
            (self._devices / bus / "authorized_default").write_text("0\n")
        return buses

    def locked(self) -> bool:
        try:
            return all(
                (self._devices / b / "authorized_default").read_text().strip() == "0"
                for b in self._buses()
            )
        except OSError:
            return False

    def _path(self, name: str) -> str:
        real = Path(os.path.realpath(self._devices / name))
        try:
            return str(real.relative_to(os.path.realpath(self._sys_root)))
        except ValueError:
            return str(real).lstrip("/")

    def _read(self, name: str) -> SeenDevice:
        node = self._devices / name

        def attr(what: str) -> bytes:
            try:
                with open(node / what, "rb") as f:
                    return f.read(MAX_DESCRIPTORS)
            except OSError as exc:
                if exc.errno in _GONE and not node.exists():
                    raise
                # No serial number, say, or an attribute the kernel will not give: an
                # empty one (empty descriptors do not parse: the device is refused).
                return b""

        try:
            return SeenDevice(
                name=name,
                path=self._path(name),
                descriptors=attr("descriptors"),
                serial=_text(attr("serial")),
                manufacturer=_text(attr("manufacturer")),
                product=_text(attr("product")),
                authorized=attr("authorized").strip() == b"1",
            )
        except OSError as exc:
            if exc.errno in _GONE:
                raise DeviceGone(name) from None
            raise

    def devices(self) -> list[SeenDevice]:
        found = []
        for name in self._entries():
            # Interfaces ("1-1:1.0") are judged with their device; root hubs are the buses.
            if ":" in name or name.startswith("usb"):
                continue
            with contextlib.suppress(DeviceGone):
                found.append(self._read(name))
        return found

    def authorize(self, name: str, allowed: bool) -> None:
        try:
            with open(self._devices / name / "authorized", "w") as f:
                f.write("1\n" if allowed else "0\n")
        except OSError as exc:
            if exc.errno in _GONE:
                raise DeviceGone(name) from None
            raise

    def _start_monitor(self) -> pyudev.Monitor | None:
        try:
            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            monitor.filter_by("usb")
            monitor.start()
        except (OSError, pyudev.DeviceNotFoundError, ImportError) as exc:
            log.warning("usb_udev_unavailable", reason=str(exc), rescan_s=RESCAN_S)
            return None
        return monitor

    async def changes(self) -> AsyncIterator[None]:
        monitor = self._start_monitor() if self._watch_udev else None
        self._monitor = monitor
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        if monitor is not None:
            loop.add_reader(monitor.fileno(), event.set)
        try:
            while True:
                await first_of(self._clock.sleep(RESCAN_S), event.wait())
                event.clear()
                while monitor is not None and monitor.poll(timeout=0) is not None:
                    pass  # drained: the caller reads the devices as they are now
                yield None
        finally:
            if monitor is not None:
                loop.remove_reader(monitor.fileno())

    def close(self) -> None:
        self._monitor = None
