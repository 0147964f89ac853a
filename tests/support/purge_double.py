"""A MediaPurger over an image file, for the wipe service's purge logic where real devices
cannot be made to misbehave on cue: a device that lies about erasing, one that never
answers, a sanitize that runs on in the background across a restart. What it reports is
the recorded QEMU NVMe controller's Identify data, with SANICAP patched where a test needs
sanitize; what it does to the image is real, and the service's read-back checks it. The
real devices are exercised in tests/wipe/test_media_qemu.py."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mfpsecd.wipe.model.media_identify import parse_nvme_controller
from mfpsecd.wipe.model.purge_plan import Capabilities, PurgeMethod
from mfpsecd.wipe.ports import DeviceProgress, MediaInfo, MediaProbe

DATA = Path(__file__).resolve().parents[1] / "data" / "identify"


def controller(sanicap: int = 0) -> bytes:
    raw = bytearray((DATA / "qemu-7.2-nvme-identify-controller.bin").read_bytes())
    raw[328:332] = sanicap.to_bytes(4, "little")
    return bytes(raw)


def _fill(path: Path, make: object) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        for off in range(0, size, 1 << 20):
            n = min(1 << 20, size - off)
            f.write(os.urandom(n) if make == "random" else bytes(n))
        f.flush()
        os.fsync(f.fileno())


@dataclass
class ImagePurger:
    """behaviour: "erase" (zeros), "crypto" (new random content), "lie" (nothing),
    "hang" (block until `release` is set, then erase), "fail" (a sanitize ends failed).
    probe_error: the probe raises it (the device went away, EACCES...)."""

    behaviour: str = "erase"
    sanicap: int = 0
    sanitize_polls: int = 3  # status reads a background sanitize takes to finish
    others_in_use: str = ""  # what else on the controller is in use
    probe_error: OSError | None = None
    issued: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    _sanitizing: int = -1  # status reads left; -1: none ever, -2: completed

    def probe(self, info: MediaInfo) -> MediaProbe:
        if self.probe_error is not None:
            raise self.probe_error
        raw = controller(self.sanicap)
        return MediaProbe(
            Capabilities("nvme", False, nvme=parse_nvme_controller(raw)),
            {"nvme-identify-controller": raw},
            (),
            self.others_in_use,
        )

    def read_blocks(
        self, info: MediaInfo, offsets: Iterable[int], block: int
    ) -> Iterator[tuple[int, bytes]]:
        with open(info.path, "rb") as f:
            for off in offsets:
                yield off, os.pread(f.fileno(), block, off)

    def issue(self, info: MediaInfo, method: PurgeMethod, secret: str, timeout_s: float) -> str:
        self.issued.append(method.value)
        if method.background:
            self._sanitizing = self.sanitize_polls
            return "Sanitize: started"
        if self.behaviour == "hang":
            self.entered.set()
            self.release.wait()
        if self.behaviour != "lie":
            _fill(info.path, "random" if self.behaviour == "crypto" else "zeros")
        return f"{method.value}: success"

    def progress(self, info: MediaInfo, method: PurgeMethod) -> DeviceProgress | None:
        if not method.background:
            return None
        if self._sanitizing == -2:
            return DeviceProgress("completed", 1.0, 60.0, "Sanitize Status: completed")
        if self._sanitizing == -1:
            return DeviceProgress("idle", 1.0, 0.0, "Sanitize Status: never")
        if self._sanitizing > 0:
            self._sanitizing -= 1
            done = self.sanitize_polls - self._sanitizing
            return DeviceProgress(
                "running", done / (self.sanitize_polls + 1), 60.0, "Sanitize Status: in progress"
            )
        if self.behaviour == "fail":
            return DeviceProgress("failed", 0.0, 0.0, "Sanitize Status: failed")
        if self.behaviour != "lie":
            _fill(info.path, "random" if method is PurgeMethod.NVME_SANITIZE_CRYPTO else "zeros")
        self._sanitizing = -2  # reported completed from now on
        return DeviceProgress("completed", 1.0, 60.0, "Sanitize Status: completed")
