"""Verify after every purge (SPEC W-3..W-5): a device's word is never taken for it.

Where to read (sample positions spread over the whole device, always including the first
and last blocks, or every block for "verify all"), and what each block read back must
be: all zeros, uniformly erased (0x00 or 0xFF, as flash reads after an erase), or, after
a cryptographic erase, anything but what it held before (its digest is taken before the
purge). A device that reports success and leaves data fails here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mfpsecd.wipe.model.purge_plan import Expect


def positions(size: int, block: int, fraction: float, *, seed: int) -> Sequence[int]:
    """Block-aligned offsets to read: the first and last blocks, and an even spread plus a
    pseudo-random jitter covering `fraction` of the blocks (1.0: every block)."""
    blocks = size // block
    if blocks <= 0:
        return []
    if fraction >= 1.0:
        return range(0, blocks * block, block)
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
    offset: int  # the first block that failed, -1 when all passed or none could be judged
    reason: str
    blocks: int  # blocks judged
    uniform: int = 0  # crypto erase: blocks all 0x00 or all 0xFF before, which prove nothing


def check(
    expect: Expect, samples: Iterable[tuple[int, bytes]], before: dict[int, bytes] | None = None
) -> Finding:
    """samples: (offset, data read back), consumed once; before: offset → digest (or a
    prefix of it) taken before the purge (needed for Expect.CHANGED). Nothing read back is
    never a pass."""
    if expect is Expect.CHANGED:
        if before is None:
            raise ValueError("a crypto erase is verified against digests taken before")
        return _changed(samples, before)
    if expect not in (Expect.ZEROS, Expect.ERASED):
        raise ValueError(f"{expect.value} is verified by the overwrite engine itself")
    n = 0
    for offset, data in samples:
        n += 1
        if data.count(0) == len(data):
            continue
        if expect is Expect.ZEROS:
            return Finding(False, offset, "not zeros", n)
        if data.count(0xFF) != len(data):
            return Finding(False, offset, "neither all 0x00 nor all 0xFF", n)
    if n == 0:
        return _NOTHING
    return Finding(True, -1, "", n)


_NOTHING = Finding(False, -1, "no block was read back (target smaller than a block?)", 0)


def _changed(samples: Iterable[tuple[int, bytes]], before: dict[int, bytes]) -> Finding:
    """A block that read all 0x00 or all 0xFF before (never written, or trimmed) reads the
    same after a deallocating crypto erase: it is left out, and at least one block that
    held data must be judged, or the erase is not shown to have done anything."""
    blank: dict[int, tuple[bytes, bytes]] = {}
    judged = uniform = 0
    for offset, data in samples:
        old = before.get(offset)  # a digest, or its first bytes
        if not old:
            return Finding(
                False, offset, "no digest was taken there before the erase", judged, uniform
            )
        if len(data) not in blank:
            blank[len(data)] = (digest(bytes(len(data))), digest(b"\xff" * len(data)))
        if any(d[: len(old)] == old for d in blank[len(data)]):
            uniform += 1
            continue
        judged += 1
        if digest(data)[: len(old)] == old:
            return Finding(False, offset, "still holds what it held before", judged, uniform)
    if judged == uniform == 0:
        return _NOTHING
    if judged == 0:
        return Finding(
            False,
            -1,
            "no sampled block held data before the erase, so the read-"
            "back cannot show that the erase changed anything (name a block "
            "erase or an overwrite instead)",
            0,
            uniform,
        )
    return Finding(True, -1, "", judged, uniform)
