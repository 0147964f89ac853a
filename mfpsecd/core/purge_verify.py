"""Verify after every purge (SPEC W-3..W-5): a device's word is never taken for it.

Where to read (sample positions spread over the whole device, always including the first
and last blocks, or every block for "verify all"), and what each block read back must
be: all zeros, uniformly erased (0x00 or 0xFF, as flash reads after an erase), or, after
a cryptographic erase, anything but what it held before (its digest is taken before the
purge). A device that reports success and leaves data fails here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mfpsecd.core.purge_plan import Expect


def positions(size: int, block: int, fraction: float, *, seed: int) -> list[int]:
    """Block-aligned offsets to read: the first and last blocks, and an even spread plus a
    pseudo-random jitter covering `fraction` of the blocks (1.0: every block)."""
    blocks = size // block
    if blocks <= 0:
        return []
    if fraction >= 1.0:
        return [i * block for i in range(blocks)]
    count = max(2, min(blocks, int(blocks * fraction)))
    step = blocks / count
    state = seed or 1
    chosen = {0, blocks - 1}
    for i in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        chosen.add(min(blocks - 1, int(i * step + (state >> 33) % max(1, int(step)))))
    return [b * block for b in sorted(chosen)]


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Finding:
    ok: bool
    offset: int  # the first block that failed, -1 when all passed
    reason: str
    blocks: int  # blocks checked


def check(expect: Expect, samples: list[tuple[int, bytes]],
          before: dict[int, bytes] | None = None) -> Finding:
    """samples: (offset, data read back); before: offset → digest (or a prefix of it) taken
    before the purge (needed for Expect.CHANGED)."""
    for offset, data in samples:
        if expect is Expect.ZEROS:
            if data.count(0) != len(data):
                return Finding(False, offset, "not zeros", len(samples))
        elif expect is Expect.ERASED:
            if data.count(0) != len(data) and data.count(0xFF) != len(data):
                return Finding(False, offset, "neither all 0x00 nor all 0xFF", len(samples))
        elif expect is Expect.CHANGED:
            if before is None:
                raise ValueError("a crypto erase is verified against digests taken before")
            old = before.get(offset)  # a digest, or its first bytes
            if old and digest(data)[:len(old)] == old:
                return Finding(False, offset, "still holds what it held before",
                               len(samples))
        else:
            raise ValueError(f"{expect.value} is verified by the overwrite engine itself")
    return Finding(True, -1, "", len(samples))
