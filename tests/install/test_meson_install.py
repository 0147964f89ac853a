"""`meson install` as a firmware integrator or a Debian package runs it (issue 26): every
file a device needs lands where systemd, man, the shells and a C panel's build look for
it, the installed units verify against that tree, and the tree matches the committed
manifest, so nothing is added or lost unnoticed. (The Python package itself is the
wheel's business: tests/install/test_wheel.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import ROOT
from tests.support.unit_verify import verify

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

MANIFEST = Path(__file__).with_name("meson_install.manifest")
MESON = str(Path(sys.executable).parent / "meson")


def _run(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert out.returncode == 0, f"{argv}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def destdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("meson-install")
    build, dest = work / "build", work / "root"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    _run(MESON, "setup", str(build), "--prefix=/usr", "-Dpython_ext=false", env=env)
    _run(MESON, "install", "-C", str(build), "--destdir", str(dest), "--quiet", env=env)
    return dest


def _tree(root: Path) -> list[str]:
    lines = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            mode = "x" if os.access(p, os.X_OK) else "-"
            lines.append(f"{mode} /{p.relative_to(root)}")
    return lines


def test_the_installed_tree_matches_the_manifest(destdir: Path) -> None:
    expected = [ln for ln in MANIFEST.read_text().splitlines() if ln and not ln.startswith("#")]
    assert _tree(destdir) == expected


def test_the_installed_units_verify_against_the_installed_tree(destdir: Path) -> None:
    root = destdir.parent / "verify-root"
    shutil.copytree(destdir, root, symlinks=True)
    # systemd's own units (sysinit.target, ...), as the device has them.
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = sorted(str(p) for p in (root / "lib/systemd/system").glob("mfpsecd*"))
    assert len(units) == 9  # the purge helper's template included
    assert verify(root, units) == ""


def test_a_c_panel_build_finds_the_interfaces_through_pkg_config(destdir: Path) -> None:
    env = {
        **os.environ,
        "PKG_CONFIG_PATH": str(destdir / "usr/share/pkgconfig"),
        "PKG_CONFIG_SYSROOT_DIR": str(destdir),
    }
    where = _run("pkg-config", "--variable=varlinkdir", "mfpsecd-ipc", env=env).strip()
    installed = {p.name: p.read_text() for p in Path(where).glob("*.varlink")}
    committed = {p.name: p.read_text() for p in (ROOT / "mfpsecd").glob("*/*.varlink")}
    assert installed == committed and len(installed) == 11


def test_man_pages_and_completions_come_from_the_commands(destdir: Path) -> None:
    page = _run("man", "-l", str(destdir / "usr/share/man/man8/mfpsec.8"), env={"MANWIDTH": "100"})
    for command in ("wipe start", "posture", "events", "keys backup-schedule", "net allow"):
        assert command in page, command
    daemon_page = _run("man", "-l", str(destdir / "usr/share/man/man8/mfpsecd.8"))
    assert "fw-verify" in daemon_page and "net-restore" in daemon_page
    bash = destdir / "usr/share/bash-completion/completions/mfpsec"
    _run("bash", "-n", str(bash))
    assert "_MFPSEC_COMPLETE" in bash.read_text()
    assert (destdir / "usr/share/zsh/site-functions/_mfpsecd").is_file()


def test_the_launchers_run_the_commands(destdir: Path) -> None:
    for prog in ("mfpsec", "mfpsecd"):
        launcher = destdir / "usr/bin" / prog
        first = launcher.read_text().splitlines()[0]
        assert first.startswith("#!/") and first.endswith(" -I")
        out = _run(str(launcher), "--help")
        assert "Usage:" in out
