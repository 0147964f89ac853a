"""The mount table (/proc/self/mountinfo under the board's proc_root), read fresh each time:
mounts are not udev events.

The table is bytes: a mount point is whatever bytes the path has (not always UTF-8, a
USB stick's label for one), with blanks, tabs, newlines and backslashes written as octal
escapes (\\040). It is parsed as bytes and mount points come back as the str that
os.fsdecode gives, so they compare with any other path of this process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_OCTAL = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    options: str  # the mount's options, then the superblock's, comma-separated


def _unescape(field: bytes) -> str:
    return os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), field))


def _lines(mountinfo: Path) -> list[list[bytes]]:
    try:
        return [line.split() for line in mountinfo.read_bytes().splitlines()]
    except OSError:
        return []


def mount_of(mountinfo: Path, path: Path) -> Mount | None:
    """The mount a path lives on (the longest mount point above it; the last mounted
    wins among equals, as the kernel resolves them)."""
    target = str(path.resolve())
    best: Mount | None = None
    for fields in _lines(mountinfo):
        if b"-" not in fields[6:]:
            continue
        dash = fields.index(b"-", 6)
        if len(fields) < dash + 4:
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):
            best = Mount(
                point,
                os.fsdecode(fields[dash + 1]),
                os.fsdecode(fields[5] + b"," + fields[dash + 3]),
            )
    return best


def mounts(mountinfo: Path) -> dict[str, str]:
    """major:minor → first mount point."""
    found: dict[str, str] = {}
    for fields in _lines(mountinfo):
        if len(fields) > 4:
            found.setdefault(os.fsdecode(fields[2]), _unescape(fields[4]))
    return found
