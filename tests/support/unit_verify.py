"""`systemd-analyze verify` of unit files against a root where their paths resolve."""

from __future__ import annotations

import subprocess
from pathlib import Path


def verify(root: Path, units: list[str]) -> str:
    """→ what verify printed on stderr: "" when every unit is clean. verify exits 0 on
    "Failed to parse ..., ignoring", so its stderr is the verdict, not its status."""
    r = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return r.stderr if r.returncode == 0 else r.stderr or f"exit {r.returncode}"
