"""What a block device can do for a purge, asked of the device itself through the kernel:
NVMe admin commands (NVME_IOCTL_ADMIN_CMD) and ATA IDENTIFY DEVICE (HDIO_GET_IDENTITY on
a libata disk), with sysfs for the transport and the eMMC/SD distinction.

Every ioctl's failure is translated here: a device that does not answer Identify is
reported as such (the planner then skips the methods that need it), never guessed at.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
import subprocess
from pathlib import Path

from mfpsecd.base.mounts import mounts
from mfpsecd.wipe.backends.disks import block_node
from mfpsecd.wipe.model.media_identify import (
    parse_ata_identify,
    parse_ext_csd,
    parse_hdparm_max_sectors,
    parse_nvme_controller,
    parse_sanitize_status,
)
from mfpsecd.wipe.model.purge_plan import Capabilities
from mfpsecd.wipe.ports import MediaProbe

NVME_IOCTL_ID = 0x4E40  # _IO('N', 0x40)
NVME_IOCTL_ADMIN_CMD = 0xC0484E41  # _IOWR('N', 0x41, struct nvme_passthru_cmd)
HDIO_GET_IDENTITY = 0x030D
_PASSTHRU = struct.Struct("<BBHIIIQQII6III")  # struct nvme_passthru_cmd, 72 bytes

OP_IDENTIFY = 0x06
OP_GET_LOG_PAGE = 0x02
OP_FORMAT_NVM = 0x80
OP_SANITIZE = 0x84


class NvmeError(OSError):
    """The controller completed the command with a status (or the ioctl failed)."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(errno.EIO, f"{what}: NVMe status 0x{status:x}")
        self.status = status


def nvme_admin(
    fd: int,
    opcode: int,
    *,
    nsid: int = 0,
    cdw10: int = 0,
    cdw11: int = 0,
    data_len: int = 0,
    timeout_ms: int = 0,
) -> tuple[int, bytes]:
    """One admin command; → (completion dword 0, data read)."""
    buf = ctypes.create_string_buffer(data_len) if data_len else None
    addr = ctypes.addressof(buf) if buf is not None else 0
    cmd = bytearray(
        _PASSTHRU.pack(
            opcode, 0, 0, nsid, 0, 0, 0, addr, 0, data_len, cdw10, cdw11, 0, 0, 0, 0, timeout_ms, 0
        )
    )
    status = fcntl.ioctl(fd, NVME_IOCTL_ADMIN_CMD, cmd, True)
    if status != 0:  # > 0: the NVMe status field; < 0 raises OSError above
        raise NvmeError(status, f"admin opcode 0x{opcode:02x}")
    result = _PASSTHRU.unpack(bytes(cmd))[-1]
    return result, bytes(buf.raw) if buf is not None else b""


def nvme_namespace_id(fd: int) -> int:
    return fcntl.ioctl(fd, NVME_IOCTL_ID)


def nvme_identify(fd: int, cns: int, nsid: int = 0) -> bytes:
    return nvme_admin(fd, OP_IDENTIFY, nsid=nsid, cdw10=cns, data_len=4096)[1]


SANITIZE_LOG = 0x81
_ALL_NAMESPACES = 0xFFFFFFFF


def nvme_sanitize_log(fd: int) -> bytes:
    """The Sanitize Status log page (512 bytes: NUMDL = 128 dwords - 1)."""
    return nvme_admin(
        fd, OP_GET_LOG_PAGE, nsid=_ALL_NAMESPACES, cdw10=SANITIZE_LOG | (127 << 16), data_len=512
    )[1]


# _IOWR(MMC_BLOCK_MAJOR 179, 0, struct mmc_ioc_cmd): 72 bytes, data_ptr last
MMC_IOC_CMD = 0xC048B300
_MMC_IOC = struct.Struct("<iiII4IIIIIIIIIQ")
_MMC_SEND_EXT_CSD = 8
_MMC_R1_ADTC = 0x80 | 0x15 | 0x20  # MMC_RSP_SPI_R1 | MMC_RSP_R1 | MMC_CMD_ADTC


def mmc_ext_csd(fd: int) -> bytes:
    """SEND_EXT_CSD (CMD8): the eMMC's 512-byte extended CSD register, where its secure
    erase, trim and sanitize support are advertised (sysfs shows none of them)."""
    buf = ctypes.create_string_buffer(512)
    cmd = bytearray(
        _MMC_IOC.pack(
            0,
            0,
            _MMC_SEND_EXT_CSD,
            0,
            0,
            0,
            0,
            0,
            _MMC_R1_ADTC,
            512,
            1,
            0,
            0,
            0,
            0,
            0,
            ctypes.addressof(buf),
        )
    )
    fcntl.ioctl(fd, MMC_IOC_CMD, cmd, True)
    return bytes(buf.raw)


def ata_identify(fd: int) -> bytes:
    """IDENTIFY DEVICE as the drive sent it. libata's HDIO_GET_IDENTITY returns the data
    with the serial, firmware and model strings already turned into readable byte order
    (ata_get_identity); they are turned back so the checksum and the parser see the
    standard layout (each word's first character in its high byte)."""
    buf = bytearray(512)
    fcntl.ioctl(fd, HDIO_GET_IDENTITY, buf, True)
    for first, last in ((10, 20), (23, 27), (27, 47)):
        for w in range(first, last):
            buf[2 * w], buf[2 * w + 1] = buf[2 * w + 1], buf[2 * w]
    return bytes(buf)


def _native_max(path: Path, problems: list[str]) -> tuple[int, int] | None:
    """(visible, native max) sectors: READ NATIVE MAX ADDRESS through `hdparm -N` (which
    only reads without a `p` argument). A Host Protected Area hides the difference."""
    try:
        said = subprocess.run(
            ["hdparm", "-N", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
            check=False,
        )
        return parse_hdparm_max_sectors(said.stdout + said.stderr)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        problems.append(f"READ NATIVE MAX ADDRESS (hdparm -N): {exc}")
        return None


def _sys_node(path: Path, sys_root: Path) -> Path:
    return block_node(os.stat(path).st_rdev, sys_root)


def _siblings_in_use(node: Path, proc_root: Path) -> str:
    """The controller's other namespaces (and their partitions) that are mounted or held:
    a sanitize, or a format of every namespace, would erase them too."""
    table = mounts(proc_root / "self" / "mountinfo")
    busy = []
    for ns in sorted(node.parent.glob("nvme*n*")):
        if ns == node or (ns / "partition").exists() or not (ns / "dev").exists():
            continue
        for dev in [ns, *(p.parent for p in ns.glob("*/partition"))]:
            devnum = (dev / "dev").read_text().strip()
            holders = [h.name for h in (dev / "holders").glob("*")]
            if devnum in table:
                busy.append(f"{dev.name} is mounted at {table[devnum]}")
            elif holders:
                busy.append(f"{dev.name} is held by {', '.join(sorted(holders))}")
    return "; ".join(busy)


def probe(  # noqa: C901 - to split (issue 24)
    path: Path, *, sys_root: Path = Path("/sys"), proc_root: Path = Path("/proc")
) -> MediaProbe:
    if path.is_file():
        # An image file (the simulated board): there is no device to ask.
        return MediaProbe(
            Capabilities("file", None),
            {},
            ("an image file: no device to ask, the engine overwrites it",),
        )
    node = _sys_node(path, sys_root)
    where = str(node)
    rotational_text = (
        (node / "queue" / "rotational").read_text().strip()
        if (node / "queue" / "rotational").exists()
        else ""
    )
    rotational = None if rotational_text == "" else rotational_text == "1"
    raw: dict[str, bytes] = {}
    problems: list[str] = []
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if "/nvme" in where:
            try:
                raw["nvme-identify-controller"] = nvme_identify(fd, 1)
                nsid = nvme_namespace_id(fd)
                raw["nvme-identify-namespace"] = nvme_identify(fd, 0, nsid)
            except OSError as exc:
                problems.append(f"NVMe Identify: {exc}")
            nvme = (
                parse_nvme_controller(raw["nvme-identify-controller"])
                if "nvme-identify-controller" in raw
                else None
            )
            status = None
            if nvme is not None and nvme.sanicap & 0x7:
                try:
                    raw["nvme-sanitize-log"] = nvme_sanitize_log(fd)
                    status = parse_sanitize_status(raw["nvme-sanitize-log"])
                except (OSError, ValueError) as exc:
                    problems.append(f"NVMe Sanitize Status log: {exc}")
            return MediaProbe(
                Capabilities("nvme", rotational, nvme=nvme, nvme_sanitize=status),
                raw,
                tuple(problems),
                _siblings_in_use(node, proc_root),
            )
        if "/ata" in where:
            try:
                raw["ata-identify"] = ata_identify(fd)
                ata = parse_ata_identify(raw["ata-identify"])
            except (OSError, ValueError) as exc:
                problems.append(f"ATA IDENTIFY DEVICE: {exc}")
                ata = None
            max_sectors = None
            if ata is not None and (ata.hpa_supported or ata.ama_supported):
                max_sectors = _native_max(path, problems)
            return MediaProbe(
                Capabilities("ata", rotational, ata=ata, max_sectors=max_sectors),
                raw,
                tuple(problems),
            )
        if "/mmc" in where:
            kind = (
                (node / "device" / "type").read_text().strip()
                if (node / "device" / "type").exists()
                else ""
            )
            secure_erase = False
            if kind == "MMC":
                try:
                    raw["mmc-ext-csd"] = mmc_ext_csd(fd)
                    secure_erase = parse_ext_csd(raw["mmc-ext-csd"]).secure_erase
                except (OSError, ValueError) as exc:
                    problems.append(f"eMMC EXT_CSD: {exc}: secure erase not assumed")
            return MediaProbe(
                Capabilities(
                    "mmc" if kind == "MMC" else "sd", False, mmc_secure_erase=secure_erase
                ),
                raw,
                tuple(problems),
            )
        # A SCSI disk behind virtio-scsi or a USB bridge sits under a SCSI host; a
        # virtio-blk disk does not.
        for key, name in (("/usb", "usb"), ("/host", "scsi"), ("/virtio", "virtio")):
            if key in where:
                return MediaProbe(Capabilities(name, rotational), raw, ())
        return MediaProbe(Capabilities("unknown", rotational), raw, ())
    finally:
        os.close(fd)
