"""Running a purge method on a device, and reading it back (SPEC W-3..W-5).

NVMe commands go through NVME_IOCTL_ADMIN_CMD; ATA security erase, SCSI FORMAT UNIT and
eMMC secure erase go through hdparm, sg_format and blkdiscard, whose exit statuses are
recorded but never trusted: the outcome is what the read-back finds (hdparm exits 0 when
the drive aborted the erase; QEMU's FORMAT UNIT reports success and leaves the data).
The page cache is bypassed for every read-back (O_DIRECT), so what is checked is what the
device returns now.
"""

from __future__ import annotations

import mmap
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mfpsecd.backends.media_probe import (
    OP_FORMAT_NVM,
    NvmeError,
    nvme_admin,
    nvme_identify,
    nvme_namespace_id,
)
from mfpsecd.core import purge_verify
from mfpsecd.core.media_identify import parse_nvme_namespace
from mfpsecd.core.purge_plan import Expect, Method

BLKFLSBUF = 0x1261
_SES = {Method.NVME_FORMAT_ERASE: 1, Method.NVME_FORMAT_CRYPTO: 2}


@dataclass
class Outcome:
    method: Method
    device_said: str  # the command's own report (status, tool exit code and output)
    completed: bool = False  # the read-back passed: the only thing that counts
    verify: str = ""
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)


def _size(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def read_blocks(path: Path, offsets: list[int], block: int) -> list[tuple[int, bytes]]:
    """Each block as the device returns it (O_DIRECT into an aligned buffer)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    buf = mmap.mmap(-1, block)
    try:
        out = []
        for off in offsets:
            n = os.preadv(fd, [buf], off)
            if n != block:
                raise OSError(f"short read at {off}: {n} of {block} bytes")
            out.append((off, bytes(buf)))
        return out
    finally:
        buf.close()
        os.close(fd)


def _tool(argv: list[str], timeout: float) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                       check=False)
    text = " ".join((r.stdout + " " + r.stderr).split())[:400]
    return f"{' '.join(argv[:2])}: exit {r.returncode}: {text}"


def _nvme_format(path: Path, method: Method, timeout_s: float) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        nsid = nvme_namespace_id(fd)
        ns = parse_nvme_namespace(nvme_identify(fd, 0, nsid))
        cdw10 = (ns.lba_format & 0xF) | ((ns.lba_format >> 4) & 0x3) << 12 | _SES[method] << 9
        try:
            nvme_admin(fd, OP_FORMAT_NVM, nsid=nsid, cdw10=cdw10,
                       timeout_ms=int(timeout_s * 1000))
        except NvmeError as exc:
            return f"Format NVM SES={_SES[method]}: status 0x{exc.status:x}"
        return f"Format NVM SES={_SES[method]} nsid {nsid}: success"
    finally:
        os.close(fd)


def _ata_security_erase(path: Path, method: Method, timeout_s: float) -> str:
    """The drive gets a one-time password (a Security Erase needs one), then the erase;
    both hdparm reports are kept, neither decides."""
    password = secrets.token_hex(8)
    enhanced = method is Method.ATA_SECURITY_ERASE_ENHANCED
    said = [_tool(["hdparm", "--user-master", "u", "--security-set-pass", password,
                   str(path)], 60)]
    said.append(_tool(["hdparm", "--user-master", "u",
                       "--security-erase-enhanced" if enhanced else "--security-erase",
                       password, str(path)], timeout_s))
    return " | ".join(said)


def execute(path: Path, method: Method, expect: Expect, *, fraction: float = 0.01,
            timeout_s: float = 3600.0, block: int = 4096) -> Outcome:
    """Run one method and verify it. The overwrite engine verifies its own passes and is
    run by the wipe service, not here."""
    size = _size(path)
    offsets = purge_verify.positions(size, block, fraction, seed=int.from_bytes(
        secrets.token_bytes(8), "big"))
    # Only a crypto erase is judged against what the blocks held before.
    before = {off: purge_verify.digest(data) for off, data in read_blocks(
        path, offsets, block)} if expect is Expect.CHANGED else None
    t0 = time.monotonic()
    if method in _SES:
        said = _nvme_format(path, method, timeout_s)
    elif method in (Method.ATA_SECURITY_ERASE, Method.ATA_SECURITY_ERASE_ENHANCED):
        said = _ata_security_erase(path, method, timeout_s)
    elif method is Method.SCSI_FORMAT_UNIT:
        # --wait: no IMMED, so no 60 s polling of a format QEMU finishes at once
        said = _tool(["sg_format", "--format", "--quick", "--wait", str(path)], timeout_s)
    elif method is Method.MMC_SECURE_ERASE:
        said = _tool(["/usr/sbin/blkdiscard", "--secure", str(path)], timeout_s)
    else:
        raise ValueError(f"{method.value} is not run by this backend")
    outcome = Outcome(method, said, seconds=time.monotonic() - t0)
    finding = purge_verify.check(expect, read_blocks(path, offsets, block), before)
    outcome.completed = finding.ok
    outcome.verify = (f"{finding.blocks} blocks read back: as expected ({expect.value})"
                      if finding.ok else f"FAILED at offset {finding.offset}: "
                      f"{finding.reason} ({finding.blocks} blocks sampled)")
    return outcome
