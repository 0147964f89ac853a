"""The MediaPurger port: a purge method's device command, its status, and the read-back
(SPEC W-3..W-5).

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
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mfpsecd.wipe.backends.media_probe import (
    OP_FORMAT_NVM,
    OP_SANITIZE,
    NvmeError,
    nvme_admin,
    nvme_identify,
    nvme_namespace_id,
    nvme_sanitize_log,
    probe,
)
from mfpsecd.wipe.model.media_identify import (
    SanitizeState,
    parse_hdparm_sanitize_status,
    parse_nvme_namespace,
    parse_sanitize_status,
)
from mfpsecd.wipe.model.purge_plan import PurgeMethod
from mfpsecd.wipe.ports import DeviceProgress, MediaInfo, MediaProbe

BLKFLSBUF = 0x1261
_SES = {PurgeMethod.NVME_FORMAT_ERASE: 1, PurgeMethod.NVME_FORMAT_CRYPTO: 2}


def read_blocks(path: Path, offsets: Iterable[int], block: int) -> Iterator[tuple[int, bytes]]:
    """Each block as the device returns it (O_DIRECT into an aligned buffer), one at a
    time."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    try:
        with mmap.mmap(-1, block) as buf:
            for off in offsets:
                n = os.preadv(fd, [buf], off)
                if n != block:
                    raise OSError(f"short read at {off}: {n} of {block} bytes")
                yield off, bytes(buf)
    finally:
        os.close(fd)


REDACTED = "[redacted]"


def _tool(argv: list[str], timeout: float, *, password: str = "") -> str:
    """Run a tool; → what it said, one line, for the record and the certificate. A
    password goes to its standard input (never on its command line, which any process
    can read) and is blanked wherever the tool echoes it."""
    try:
        # A new session has no controlling terminal: hdparm's prompt reads standard input.
        r = subprocess.run(
            argv,
            input=f"{password}\n" if password else None,
            # Nothing of ours on its standard input (in the purge helper that is the
            # connection to the daemon).
            stdin=None if password else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            start_new_session=bool(password),
        )
    except subprocess.TimeoutExpired:
        return f"{' '.join(argv[:2])}: no exit after {timeout:.0f} s (killed)"
    text = " ".join((r.stdout + " " + r.stderr).split())
    if password:
        text = text.replace(password, REDACTED)
    return f"{' '.join(argv[:2])}: exit {r.returncode}: {text[:400]}"


def _nvme_format(path: Path, method: PurgeMethod, timeout_s: float) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        nsid = nvme_namespace_id(fd)
        ns = parse_nvme_namespace(nvme_identify(fd, 0, nsid))
        cdw10 = ns.format_cdw10(_SES[method])
        try:
            nvme_admin(fd, OP_FORMAT_NVM, nsid=nsid, cdw10=cdw10, timeout_ms=int(timeout_s * 1000))
        except NvmeError as exc:
            return f"Format NVM SES={_SES[method]}: status 0x{exc.status:x}"
        return f"Format NVM SES={_SES[method]} nsid {nsid}: success"
    finally:
        os.close(fd)


def _ata_security_erase(
    path: Path,
    method: PurgeMethod,
    password: str,
    timeout_s: float,
    security_enabled: Callable[[], bool],
) -> str:
    """The drive gets the job's one-time password (a Security Erase needs one), then the
    erase; both hdparm reports are kept, neither decides. Re-issued after a power cut, the
    password is already set (the drive refuses it again) and the erase takes it. A
    finished erase clears the password; if the drive still has it (it aborted the erase),
    it is removed, or the drive would lock at its next power-on under a password that
    only this job knew."""
    enhanced = method is PurgeMethod.ATA_SECURITY_ERASE_ENHANCED
    prompt = ["hdparm", "--user-master", "u", "--security-prompt-for-password"]
    said = [_tool([*prompt, "--security-set-pass", str(path)], 60, password=password)]
    said.append(
        _tool(
            [*prompt, "--security-erase-enhanced" if enhanced else "--security-erase", str(path)],
            timeout_s,
            password=password,
        )
    )
    if security_enabled():
        said.append(_tool([*prompt, "--security-disable", str(path)], 60, password=password))
    return " | ".join(said)


_SANACT = {
    PurgeMethod.NVME_SANITIZE_BLOCK: 2,
    PurgeMethod.NVME_SANITIZE_OVERWRITE: 3,
    PurgeMethod.NVME_SANITIZE_CRYPTO: 4,
}
# Overwrite is one pass of zeros, so the read-back can expect zeros (hdparm's default is
# 16 passes, and it takes the pattern as an argument).
_HDPARM_SANITIZE = {
    PurgeMethod.ATA_SANITIZE_BLOCK: ["--sanitize-block-erase"],
    PurgeMethod.ATA_SANITIZE_CRYPTO: ["--sanitize-crypto-scramble"],
    PurgeMethod.ATA_SANITIZE_OVERWRITE: [
        "--sanitize-overwrite-passes",
        "1",
        "--sanitize-overwrite",
        "hex:00000000",
    ],
}


def _nvme_sanitize(path: Path, method: PurgeMethod) -> str:
    """Start a sanitize (it runs in the controller): overwrite is one pass of zeros
    (OWPASS=1, pattern 0), so the read-back can expect zeros."""
    cdw10 = _SANACT[method] | ((1 << 4) if method is PurgeMethod.NVME_SANITIZE_OVERWRITE else 0)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        nvme_admin(fd, OP_SANITIZE, cdw10=cdw10, cdw11=0)
    except NvmeError as exc:
        return f"Sanitize SANACT={_SANACT[method]}: status 0x{exc.status:x}"
    finally:
        os.close(fd)
    return f"Sanitize SANACT={_SANACT[method]}: started"


class DevicePurger:
    """The MediaPurger port on Linux block devices (and image files, which it only reads),
    in this process: it needs CAP_SYS_ADMIN for NVMe admin commands and CAP_SYS_RAWIO for
    SG_IO. The daemon as installed holds neither and goes through the purge helper
    (helper_purger.py), which runs the `*_path` methods below."""

    def __init__(self, *, sys_root: Path = Path("/sys"), proc_root: Path = Path("/proc")) -> None:
        self._sys_root = sys_root
        self._proc_root = proc_root

    def probe(self, info: MediaInfo) -> MediaProbe:
        return self.probe_path(info.path)

    def probe_path(self, path: Path) -> MediaProbe:
        return probe(path, sys_root=self._sys_root, proc_root=self._proc_root)

    def read_blocks(
        self, info: MediaInfo, offsets: Iterable[int], block: int
    ) -> Iterator[tuple[int, bytes]]:
        return read_blocks(info.path, offsets, block)

    def issue(self, info: MediaInfo, method: PurgeMethod, secret: str, timeout_s: float) -> str:
        return self.issue_path(info.path, method, secret, timeout_s)

    def issue_path(
        self,
        path: Path,
        method: PurgeMethod,
        secret: str,
        timeout_s: float,
        *,
        claimed: bool = False,
    ) -> str:
        """claimed: the caller holds the disk exclusively (the purge helper), so a tool
        that would claim it too (blkdiscard) is told not to."""
        if method in _SES:
            return _nvme_format(path, method, timeout_s)
        if method in _SANACT:
            return _nvme_sanitize(path, method)
        if method in (PurgeMethod.ATA_SECURITY_ERASE, PurgeMethod.ATA_SECURITY_ERASE_ENHANCED):
            return _ata_security_erase(
                path, method, secret, timeout_s, lambda: self._security_enabled(path)
            )
        if method in _HDPARM_SANITIZE:
            return _tool(
                ["hdparm", "--yes-i-know-what-i-am-doing", *_HDPARM_SANITIZE[method], str(path)], 60
            )
        if method is PurgeMethod.SCSI_FORMAT_UNIT:
            # --wait: no IMMED, so no 60 s polling of a format QEMU finishes at once
            return _tool(["sg_format", "--format", "--quick", "--wait", str(path)], timeout_s)
        if method is PurgeMethod.MMC_SECURE_ERASE:
            force = ["--force"] if claimed else []
            return _tool(["/usr/sbin/blkdiscard", "--secure", *force, str(path)], timeout_s)
        raise ValueError(f"{method.value} is not a device command")

    def _security_enabled(self, path: Path) -> bool:
        try:
            ata = self.probe_path(path).capabilities.ata
        except (OSError, ValueError):
            return True  # unknown: a needless disable is refused by the drive, harmlessly
        return ata is not None and ata.security_enabled

    def progress(self, info: MediaInfo, method: PurgeMethod) -> DeviceProgress | None:
        return self.progress_path(info.path, method)

    def progress_path(self, path: Path, method: PurgeMethod) -> DeviceProgress | None:
        if method in _SANACT:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                st = parse_sanitize_status(nvme_sanitize_log(fd))
            finally:
                os.close(fd)
            state = (
                "running"
                if st.state is SanitizeState.IN_PROGRESS
                else "failed"
                if st.state is SanitizeState.FAILED
                else "completed"
                if st.succeeded
                else "idle"
            )
            # The log's estimates are named by sanitize action: block, overwrite, crypto.
            estimate = st.estimates_s.get(method.value.removeprefix("nvme-sanitize-"), 0.0)
            return DeviceProgress(
                state,
                st.progress,
                estimate,
                f"Sanitize Status: {st.state.name.lower()}, {st.progress:.0%}",
            )
        if method in _HDPARM_SANITIZE:
            said = _tool(["hdparm", "--sanitize-status", str(path)], 60)
            ata = parse_hdparm_sanitize_status(said)
            return DeviceProgress(ata.state, ata.progress, 0.0, said)
        return None
