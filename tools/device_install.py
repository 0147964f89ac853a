"""The product as a device gets it: the project's wheel built as a package builder would
(meson-python, the C extension), installed into a fresh venv that holds only what
pyproject.toml's runtime dependencies pull in, from build/wheels (offline: `make setup`
made them). Used by tests/install/test_wheel.py and the footprint bench."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / "build" / "wheels"


class InstallError(RuntimeError):
    pass


def pip(*args: str) -> None:
    # meson-python runs meson and ninja from PATH: the ones of this venv.
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
        raise InstallError(f"pip {args[0]} failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")


# The optional parts' Python extras (pyproject.toml), all of them by default.
ALL_PARTS = ("snmp", "card-login", "pdf")


def build_wheel(dist: Path, build_dir: Path, *, setup_args: Sequence[str] = ()) -> Path:
    """→ the project's wheel, built into dist with meson's build in build_dir (setup_args:
    meson options, e.g. -Dsnmp=disabled)."""
    pip(
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        str(dist),
        f"-Cbuild-dir={build_dir}",
        *(f"-Csetup-args={a}" for a in setup_args),
        str(ROOT),
    )
    (wheel,) = dist.glob("mfpsecd-*.whl")
    return wheel


def runtime_venv(wheel: Path, venv: Path, *, extras: Sequence[str] = ALL_PARTS) -> None:
    """A new venv at venv with the wheel and its runtime dependencies (with the optional
    parts' extras named), nothing else."""
    if not WHEELS.is_dir():
        raise InstallError("build/wheels is missing: run `make setup`")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip(
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--no-index",
        "--find-links",
        str(WHEELS),
        "-c",
        str(ROOT / "constraints.txt"),
        f"{wheel}[{','.join(extras)}]" if extras else str(wheel),
    )
