"""The daemon installed as on a device (tools/device_install.py), kept between runs while
the wheel is the same."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from bench import ROOT
from bench.ipc.procs import BenchError
from tools.device_install import InstallError, build_wheel, runtime_venv

HOME = ROOT / "build" / "footprint"


def device_venv() -> Path:
    """→ the venv. Rebuilt when the wheel changes (a new commit, an edited file)."""
    dist = HOME / "dist"
    # A fresh meson build: a reconfigure of an older one fails on options added since.
    subprocess.run(["rm", "-rf", str(dist), str(HOME / "build")], check=True)
    try:
        wheel = build_wheel(dist, HOME / "build")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        venv = HOME / "venv"
        marker = venv / ".wheel-sha256"
        if marker.is_file() and marker.read_text() == digest:
            return venv
        subprocess.run(["rm", "-rf", str(venv)], check=True)
        runtime_venv(wheel, venv)
    except InstallError as exc:
        raise BenchError(str(exc)) from None
    marker.write_text(digest)
    return venv


def installed_mib(venv: Path) -> float:
    """The venv's installed size (Python, packages, extensions), as du counts it."""
    out = subprocess.run(["du", "-sk", str(venv)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024
