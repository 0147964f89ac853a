"""Backup targets from udev (pyudev): USB mass-storage partitions, with their mount points.

A target is a block device (a partition, or a whole disk that has a filesystem and no
partition table) with a USB device among its ancestors, on one of the board's USB ports
when the board profile lists any. udev add/remove/change events update the list at once;
mounts are not udev events, so the mount table is re-read every few seconds too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pyudev
import structlog

from mfpsecd.base.clock import Clock
from mfpsecd.base.mounts import mounts as _mounts
from mfpsecd.keys.ports import BackupTargetInfo

log = structlog.get_logger("mfpsecd.usb")

MOUNT_POLL_S = 2.0


def _is_usb(device: pyudev.Device) -> bool:
    if device.properties.get("ID_BUS") == "usb":
        return True
    return device.find_parent("usb", "usb_device") is not None


def _size_bytes(device: pyudev.Device) -> int:
    try:
        return int(device.attributes.asint("size")) * 512
    except (KeyError, ValueError, UnicodeDecodeError):
        return 0


class UdevBackupTargets:
    def __init__(
        self, clock: Clock, ports: list[str], mountinfo: Path = Path("/proc/self/mountinfo")
    ) -> None:
        self._clock = clock
        self._ports = [p.strip("/") for p in ports]
        self._mountinfo = mountinfo
        self._context = pyudev.Context()
        self._targets: list[BackupTargetInfo] = []
        self._changed = asyncio.Event()

    def _on_port(self, device: pyudev.Device) -> bool:
        if not self._ports:
            return True
        path = device.device_path.strip("/")
        return any(path == p or path.startswith(p + "/") for p in self._ports)

    def scan(self) -> list[BackupTargetInfo]:
        mounts = _mounts(self._mountinfo)
        found = []
        for dev in self._context.list_devices(subsystem="block"):
            props = dev.properties
            if dev.device_type == "disk" and (
                props.get("ID_PART_TABLE_TYPE") or not props.get("ID_FS_TYPE")
            ):
                continue  # whole disks only when they carry a filesystem directly
            if dev.device_type not in ("disk", "partition"):
                continue
            if not _is_usb(dev) or not self._on_port(dev):
                continue
            devnum = f"{props.get('MAJOR', '')}:{props.get('MINOR', '')}"
            found.append(
                BackupTargetInfo(
                    id=props.get("ID_PATH", dev.sys_name)
                    + (
                        f"-part{props['PARTN']}"
                        if "PARTN" in props
                        and "ID_PATH" in props
                        and "-part" not in props.get("ID_PATH", "")
                        else ""
                    ),
                    device=dev.device_node or f"/dev/{dev.sys_name}",
                    vendor=props.get("ID_VENDOR", ""),
                    model=props.get("ID_MODEL", ""),
                    serial=props.get("ID_SERIAL_SHORT", props.get("ID_SERIAL", "")),
                    size_bytes=_size_bytes(dev),
                    filesystem=props.get("ID_FS_TYPE", ""),
                    mount_point=mounts.get(devnum, ""),
                )
            )
        return sorted(found, key=lambda t: t.id)

    def current(self) -> list[BackupTargetInfo]:
        return list(self._targets)

    def _refresh(self) -> None:
        targets = self.scan()
        if targets != self._targets:
            added = {t.id for t in targets} - {t.id for t in self._targets}
            removed = {t.id for t in self._targets} - {t.id for t in targets}
            self._targets = targets
            log.info(
                "backup_targets_changed",
                targets=len(targets),
                added=sorted(added),
                removed=sorted(removed),
            )
            self._changed.set()
            self._changed = asyncio.Event()

    async def watch(self) -> AsyncIterator[list[BackupTargetInfo]]:
        while True:
            changed = self._changed
            yield self.current()
            await changed.wait()

    async def _event_or_timeout(self, events: asyncio.Event) -> None:
        waiter = asyncio.ensure_future(events.wait())
        sleeper = asyncio.ensure_future(self._clock.sleep(MOUNT_POLL_S))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (waiter, sleeper):
                f.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await f

    async def run(self) -> None:
        monitor = pyudev.Monitor.from_netlink(self._context)
        monitor.filter_by("block")
        monitor.start()
        loop = asyncio.get_running_loop()
        events = asyncio.Event()
        loop.add_reader(monitor.fileno(), events.set)
        try:
            self._refresh()
            while True:
                await self._event_or_timeout(events)
                events.clear()
                while monitor.poll(timeout=0) is not None:
                    pass  # drain: the scan below reads the current state anyway
                self._refresh()
        finally:
            loop.remove_reader(monitor.fileno())
