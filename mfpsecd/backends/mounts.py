"""The mount table (/proc/self/mountinfo under the board's proc_root), read fresh each time:
mounts are not udev events."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    options: str  # the mount's options, then the superblock's, comma-separated


def mount_of(mountinfo: Path, path: Path) -> Mount | None:
    """The mount a path lives on (the longest mount point above it; the last mounted
    wins among equals, as the kernel resolves them)."""
    try:
        text = mountinfo.read_text()
    except OSError:
        return None
    target = str(path.resolve())
    best: Mount | None = None
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 4:
            continue
        point = fields[4].encode().decode("unicode_escape")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):
            best = Mount(point, fields[dash + 1], f"{fields[5]},{fields[dash + 3]}")
    return best


def mounts(mountinfo: Path) -> dict[str, str]:
    """major:minor → first mount point."""
    found: dict[str, str] = {}
    try:
        text = mountinfo.read_text()
    except OSError:
        return found
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            # Mount points escape blanks as octal (\040).
            found.setdefault(fields[2], fields[4].encode().decode("unicode_escape"))
    return found
