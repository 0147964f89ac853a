"""The daemon installed as on a device: the project's wheel in a fresh venv holding only
its runtime dependencies (from build/wheels, offline), no dev tools on the path."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from bench import ROOT
from bench.ipc.procs import BenchError

WHEELS = ROOT / "build" / "wheels"
HOME = ROOT / "build" / "footprint"


def _pip(*args: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"pip {args[0]} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")


def device_venv() -> Path:
    """→ the venv. Rebuilt when the wheel changes (a new commit, an edited file)."""
    if not WHEELS.is_dir():
        raise BenchError("build/wheels is missing: run `make setup`")
    dist = HOME / "dist"
    # A fresh meson build: a reconfigure of an older one fails on options added since.
    subprocess.run(["rm", "-rf", str(dist), str(HOME / "build")], check=True)
    _pip(
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        str(dist),
        f"-Cbuild-dir={HOME / 'build'}",
        str(ROOT),
    )
    (wheel,) = dist.glob("mfpsecd-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    venv = HOME / "venv"
    marker = venv / ".wheel-sha256"
    if marker.is_file() and marker.read_text() == digest:
        return venv
    subprocess.run(["rm", "-rf", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _pip(
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--no-index",
        "--find-links",
        str(WHEELS),
        "-c",
        str(ROOT / "constraints.txt"),
        str(wheel),
    )
    marker.write_text(digest)
    return venv


def installed_mib(venv: Path) -> float:
    """The venv's installed size (Python, packages, extensions), as du counts it."""
    out = subprocess.run(["du", "-sk", str(venv)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024
