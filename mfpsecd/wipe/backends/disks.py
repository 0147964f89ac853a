"""The DiskInventory port: the board profile's disks, described from sysfs and udev.

Only disks the profile lists can be named, and each description is read fresh (size,
mounts, holders) because a disk can be mounted or attached to a loop at any time. Image
files stand in for disks on the simulated board; the board creates them (sparse) when
missing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pyudev
import structlog

from mfpsecd.base.config.schema import DiskSection
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.mounts import mounts
from mfpsecd.base.paths import Paths
from mfpsecd.wipe.ports import MediaInfo

log = structlog.get_logger("mfpsecd.disks")

# Bus names as they appear in a block device's resolved sysfs path, most specific first.
_TRANSPORTS = (
    ("/nvme", "nvme"),
    ("/mmc", "mmc"),
    ("/usb", "usb"),
    ("/ata", "ata"),
    ("/virtio", "virtio"),
    ("/host", "scsi"),
    ("/loop", "loop"),
)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass(frozen=True)
class _Block:
    sysdir: Path  # the whole disk's directory under sys_root
    devnums: list[str]  # the disk's and its partitions' major:minor
    holders: list[str]


def _whole_disk(node: Path) -> _Block:
    devnums = [_read(node / "dev")]
    holders = [h.name for h in (node / "holders").glob("*")]
    for part in node.glob("*/partition"):
        devnums.append(_read(part.parent / "dev"))
        holders += [h.name for h in (part.parent / "holders").glob("*")]
    return _Block(node, devnums, holders)


PARTITION = "a partition: the profile must name the whole disk"


def block_node(rdev: int, sys_root: Path) -> Path:
    """The block device's directory in sysfs (its real path says which bus it is on)."""
    return (sys_root / "dev" / "block" / f"{os.major(rdev)}:{os.minor(rdev)}").resolve()


def is_partition(node: Path) -> bool:
    return (node / "partition").exists()


def block_in_use(rdev: int, *, sys_root: Path, proc_root: Path) -> str:
    """Why the block device rdev may not be written now, "" when it may: a partition
    (only whole disks are sanitized), mounted (itself or a partition), or held (by a
    loop, a RAID, a device-mapper target). Read fresh: mounts are not udev events."""
    node = block_node(rdev, sys_root)
    return PARTITION if is_partition(node) else _whole_disk_in_use(node, proc_root)


def _whole_disk_in_use(node: Path, proc_root: Path) -> str:
    found = _whole_disk(node)
    table = mounts(proc_root / "self" / "mountinfo")
    where = [table[d] for d in found.devnums if d in table]
    if where:
        return f"mounted at {', '.join(sorted(where))}"
    if found.holders:
        return f"held by {', '.join(sorted(found.holders))}"
    return ""


class SysfsDiskInventory:
    def __init__(self, disks: list[DiskSection], paths: Paths, *, simulated: bool) -> None:
        self._disks = {d.id: d for d in disks}
        self._paths = paths
        self._simulated = simulated
        if simulated:
            self._create_images()

    def _create_images(self) -> None:
        for disk in self._disks.values():
            path = self._paths.dev_root / disk.path
            if path.exists() or disk.size_bytes is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as f:
                f.truncate(disk.size_bytes)
            log.info("simulated disk created", disk=disk.id, bytes=disk.size_bytes)

    def ids(self) -> list[str]:
        return list(self._disks)

    def describe(self, disk_id: str) -> MediaInfo:
        disk = self._disks.get(disk_id)
        if disk is None:
            raise MfpsecError(ErrorCode.WIPE_TARGET_UNKNOWN, target=disk_id)
        path = self._paths.dev_root / disk.path
        try:
            st = os.stat(path)
        except OSError as exc:
            return self._info(disk, path, size=0, block=512, in_use=f"missing: {exc.strerror}")
        if stat.S_ISREG(st.st_mode):
            return self._image(disk, path, st)
        if stat.S_ISBLK(st.st_mode):
            return self._block(disk, path, st)
        return self._info(
            disk, path, size=0, block=512, in_use="neither a block device nor an image file"
        )

    def _info(
        self,
        disk: DiskSection,
        path: Path,
        *,
        size: int,
        block: int,
        in_use: str,
        rotational: bool | None = None,
        transport: str = "unknown",
        model: str = "",
        serial: str = "",
    ) -> MediaInfo:
        return MediaInfo(
            id=disk.id,
            path=path,
            medium=disk.medium,
            sanitizable=disk.sanitizable,
            size_bytes=size,
            logical_block=block,
            rotational=rotational,
            transport=transport,
            model=model,
            serial=serial,
            in_use=in_use,
        )

    # ------------------------------------------------------------ image files (simulator)

    def _image(self, disk: DiskSection, path: Path, st: os.stat_result) -> MediaInfo:
        real = str(path.resolve())
        in_use = ""
        # The host's loop devices: an image attached to one (and maybe mounted) is in use.
        loops = self._paths.host_sys_root / "block"
        for backing in sorted(loops.glob("loop*/loop/backing_file")):
            if _read(backing) == real:
                in_use = f"attached to {backing.parent.parent.name}"
                break
        return self._info(
            disk,
            path,
            size=st.st_size,
            block=512,
            in_use=in_use,
            transport="file",
            model=disk.model or "simulated image",
            serial=disk.serial or f"SIM-{disk.id.upper()}",
        )

    # ------------------------------------------------------------ block devices

    def _block(self, disk: DiskSection, path: Path, st: os.stat_result) -> MediaInfo:
        node = block_node(st.st_rdev, self._paths.sys_root)
        if is_partition(node):
            return self._info(disk, path, size=0, block=512, in_use=PARTITION)
        in_use = _whole_disk_in_use(node, self._paths.proc_root)
        size = int(_read(node / "size") or 0) * 512
        block = int(_read(node / "queue" / "logical_block_size") or 512)
        rot = _read(node / "queue" / "rotational")
        transport = next((name for key, name in _TRANSPORTS if key in str(node)), "unknown")
        model, serial = self._identity(node, st.st_rdev)
        return self._info(
            disk,
            path,
            size=size,
            block=block,
            in_use=in_use,
            rotational=None if rot == "" else rot == "1",
            transport=transport,
            model=model,
            serial=serial,
        )

    def _identity(self, node: Path, rdev: int) -> tuple[str, str]:
        """Model and serial: udev's database first (it knows ATA serials), then sysfs."""
        model = serial = ""
        if self._paths.sys_root == Path("/sys"):
            try:
                dev = pyudev.Devices.from_device_number(pyudev.Context(), "block", rdev)
                model = dev.properties.get("ID_MODEL", "").replace("_", " ")
                serial = dev.properties.get("ID_SERIAL_SHORT", "")
            except (pyudev.DeviceNotFoundError, OSError, ValueError):
                pass
        device = node / "device"
        model = model or _read(device / "model") or _read(device.parent / "model")
        serial = serial or _read(device / "serial") or _read(device / "wwid")
        return model, serial
