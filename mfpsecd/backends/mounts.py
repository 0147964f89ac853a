"""The mount table (/proc/self/mountinfo under the board's proc_root), read fresh each time:
mounts are not udev events."""

from __future__ import annotations

from pathlib import Path


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
