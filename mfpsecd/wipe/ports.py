"""What sanitization needs from outside (SPEC W-*): the board's disks, the overwrite
engine, and the media's own sanitize commands. Backends in wipe/backends implement them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mfpsecd.base.config.schema import MediumKind
from mfpsecd.wipe.model.overwrite_plan import PassKind
from mfpsecd.wipe.model.purge_plan import Capabilities, PurgeMethod


@dataclass(frozen=True)
class MediaInfo:
    """One disk of the board profile as the kernel (or the simulator) describes it."""

    id: str
    path: Path  # the device node (or image file) that is opened
    medium: MediumKind  # from the board profile: picks the method
    sanitizable: bool
    size_bytes: int
    logical_block: int
    rotational: bool | None  # the kernel's view; None for image files
    transport: str  # nvme, ata, scsi, mmc, usb, virtio, file, unknown
    model: str
    serial: str
    in_use: str  # why it may not be written now ("" when free): mounted at /, loop of ...


class DiskInventory(Protocol):
    """The board profile's disks, and nothing else: there is no way to name another."""

    def ids(self) -> list[str]: ...

    def describe(self, disk_id: str) -> MediaInfo:
        """Fresh facts (size, mounts) each call. WipeTargetUnknown for an unlisted id."""
        ...


class WipeProgress(Protocol):
    """Shared with a pass running in a worker thread: read while it runs, cancel any time."""

    @property
    def position(self) -> int: ...

    @property
    def durable(self) -> int: ...

    @property
    def buffered(self) -> bool: ...

    def cancel(self) -> None: ...


@dataclass(frozen=True)
class PassSpec:
    kind: PassKind
    byte: int = 0
    key: bytes = b""  # random passes: the 32-byte stream key, regenerates the pass


class OverwriteTarget(Protocol):
    """An open target. Passes block for their whole length: run them in a worker thread."""

    @property
    def size(self) -> int: ...

    def new_progress(self) -> WipeProgress: ...

    def write_pass(
        self, start: int, end: int, spec: PassSpec, progress: WipeProgress, sync_every: int
    ) -> None:
        """WipeIoError / WipeCancelled; progress.durable is exact either way."""
        ...

    def verify(self, start: int, end: int, spec: PassSpec, progress: WipeProgress) -> None:
        """WipeVerifyFailed at the first differing byte, WipeIoError, WipeCancelled."""
        ...

    def close(self) -> None: ...


class Overwriter(Protocol):
    def open(self, info: MediaInfo) -> OverwriteTarget:
        """Open for writing (exclusively, for a block device); WipeTargetRefused when the
        kernel says it is in use, WipeIoError otherwise."""
        ...

    def open_file(self, path: Path) -> OverwriteTarget:
        """A job's temporary file (W-1), opened without following symlinks."""
        ...

    def new_key(self) -> bytes:
        """A fresh random-pass key from the CSPRNG."""
        ...


@dataclass(frozen=True)
class MediaProbe:
    """What a disk said about itself: the planner's facts and the raw evidence."""

    capabilities: Capabilities
    raw: dict[str, bytes]  # Identify data as read, by name (for the certificate)
    problems: tuple[str, ...]  # what could not be read, and why
    # What a whole-device method would also erase that is in use now (another namespace
    # of the same controller mounted or held), "" when nothing is.
    others_in_use: str = ""


@dataclass(frozen=True)
class DeviceProgress:
    """A background purge (a sanitize) as the device reports it."""

    state: str  # "running", "completed", "failed", or "idle" (none since power-on, none ever)
    fraction: float  # 0..1 of the operation in progress (1.0 when not running)
    estimate_s: float  # the device's own estimate for the whole operation, 0 if none
    said: str


class MediaPurger(Protocol):
    """The device's own purge commands. Blocking calls: run them in a worker thread.
    Nothing here decides whether a purge worked: the read-back does."""

    def probe(self, info: MediaInfo) -> MediaProbe: ...

    def read_blocks(
        self, info: MediaInfo, offsets: Iterable[int], block: int
    ) -> Iterator[tuple[int, bytes]]:
        """Each block as the device returns it now (no page cache), one at a time: a
        read-back may cover millions of blocks. OSError on failure."""
        ...

    def issue(self, info: MediaInfo, method: PurgeMethod, secret: str, timeout_s: float) -> str:
        """Run the method (a background one, a sanitize, is only started); → what the
        device or tool said. `secret` is the one-time drive password where one is needed."""
        ...

    def progress(self, info: MediaInfo, method: PurgeMethod) -> DeviceProgress | None:
        """A background method's status from the device; None for the others."""
        ...
