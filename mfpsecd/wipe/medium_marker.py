"""The proof that a sanitization resumes on the medium it started on (SPEC W-4, W-5).

A disk swapped for another of the same size while a job was interrupted (a power cut,
a stop) must never get the certificate of the one removed, which still holds its data.
Model and serial number catch a different drive, but not an image file or a drive that
reports none, so an overwrite job also writes a marker: its last MARKER_BYTES, written at
the start with an AES-256-CTR stream under a key of the job's own (kept in the job's row,
not on the medium), before any pass. Every pass then stops short of it; it is read back
before each resume and once more before the certificate. Only then do the passes reach
it too ("sealing"): each pass's pattern in turn, then the read-back of the last.

A power cut while sealing leaves nothing to compare for those few bytes; that window is
one small write, and the marker was proven just before it.
"""

from __future__ import annotations

import enum

import msgspec

from mfpsecd.wipe.model.overwrite_plan import PassKind
from mfpsecd.wipe.ports import PassSpec

MARKER_BYTES = 64 << 10  # aligned for O_DIRECT on any logical block size in use


class MarkerState(enum.Enum):
    PENDING = "pending"  # not on the medium yet: nothing was written to it either
    WRITTEN = "written"  # on the medium, durable; the passes stop short of it
    SEALING = "sealing"  # being overwritten by the passes: no longer a proof
    SEALED = "sealed"  # overwritten and read back like the rest


class MediumMarker(msgspec.Struct, kw_only=True):
    offset: int  # where it starts; it runs to the end of the target
    key: str  # hex: the AES-256-CTR key whose stream at `offset` is the marker
    state: str = MarkerState.PENDING.value

    @property
    def spec(self) -> PassSpec:
        return PassSpec(PassKind.RANDOM, 0, bytes.fromhex(self.key))

    def is_(self, state: MarkerState) -> bool:
        return self.state == state.value


def new_marker(size: int, key: bytes) -> MediumMarker | None:
    """A marker for a target of this size, or None when it is too small to spare one."""
    if size < 4 * MARKER_BYTES:
        return None
    return MediumMarker(offset=size - MARKER_BYTES, key=key.hex())


def passes_end(marker: MediumMarker | None, size: int) -> int:
    """Where the passes and their read-back stop: short of the marker, which the seal
    overwrites last."""
    return size if marker is None else marker.offset
