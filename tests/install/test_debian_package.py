"""The Debian package (issue 26 item 2): `make deb` builds it with dpkg-buildpackage, lintian
finds no error in it, and installed on this machine it runs from its installed paths, with
its system user, units and documentation in place; purged, it leaves nothing behind.

It installs onto the machine the suite runs on (root, CI): what a device's package manager
does. The fixture purges it whatever happens."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import ROOT

pytestmark = [pytest.mark.root, pytest.mark.slow]

DEB_DIR = ROOT / "build" / "deb"


def _run(*argv: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd="/", env=env
    )


def _installed() -> bool:
    r = _run("dpkg-query", "-W", "-f=${Status}", "mfpsecd")
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


@pytest.fixture(scope="module")
def deb() -> Path:
    if _installed():
        pytest.fail("mfpsecd is already installed on this machine: purge it first")
    r = subprocess.run(
        ["make", "deb"], cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (package,) = DEB_DIR.glob("mfpsecd_*.deb")
    return package


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[Path]:
    r = _run("dpkg", "-i", str(deb))
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        yield deb
    finally:
        _run("dpkg", "--purge", "mfpsecd")


def test_lintian_finds_no_error(deb: Path) -> None:
    r = _run(
        "lintian",
        "--fail-on",
        "error",
        "--suppress-tags",
        "bad-distribution-in-changes-file",
        str(deb),
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert not [ln for ln in r.stdout.splitlines() if ln.startswith("E:")], r.stdout


def test_the_installed_commands_run_and_the_system_files_are_in_place(installed: Path) -> None:
    version = _run("/usr/bin/mfpsecd", "--version")
    assert version.returncode == 0 and "mfpsecd, version 0.1.0" in version.stdout, version
    cli = _run("/usr/bin/mfpsec", "--help")
    assert cli.returncode == 0 and "wipe" in cli.stdout, cli
    helper = _run("/usr/bin/mfpsecd", "purge-helper", "--help")
    assert helper.returncode == 0 and "--user" in helper.stdout, helper
    # Every compiled module of the venv still loads after dh_strip (the wheels' bundled,
    # patchelf-modified libraries included: pillow's, behind the printable certificate).
    loads = _run(
        "/usr/lib/mfpsecd/bin/python",
        "-c",
        "import PIL._imaging, reportlab.pdfgen.canvas, cryptography.hazmat.bindings._rust, "
        "tpm2_pytss, msgspec, mfpsecd._native",
    )
    assert loads.returncode == 0, loads.stderr
    # The private venv runs the installed package, not the checkout.
    where = _run("/usr/lib/mfpsecd/bin/python", "-c", "import mfpsecd; print(mfpsecd.__file__)")
    assert where.stdout.startswith("/usr/lib/mfpsecd/lib/python3"), where
    for path in (
        "/lib/systemd/system/mfpsecd.service",
        "/lib/systemd/system/mfpsecd-purge.socket",
        "/lib/systemd/system/mfpsecd-purge@.service",
        "/usr/lib/sysusers.d/mfpsecd.conf",
        "/usr/lib/tmpfiles.d/mfpsecd.conf",
        "/usr/lib/udev/rules.d/70-mfpsecd-usb.rules",
        "/etc/mfpsecd/mfpsecd.toml",
        "/usr/share/mfpsecd/varlink/io.mfpsecd.System.varlink",
        "/usr/share/man/man8/mfpsec.8.gz",
        "/usr/share/doc/mfpsecd/README.md.gz",
    ):
        assert Path(path).exists(), path
    assert pwd.getpwnam("mfpsecd").pw_dir == "/var/lib/mfpsecd"  # the postinst made it
    # Nothing in the package names the build tree.
    leaked = _run("grep", "-rIl", str(ROOT), "/usr/lib/mfpsecd", "/usr/bin/mfpsecd")
    assert leaked.stdout == "", leaked.stdout


def test_purge_leaves_nothing(deb: Path) -> None:
    r = _run("dpkg", "-i", str(deb))
    assert r.returncode == 0, r.stderr
    r = _run("dpkg", "--purge", "mfpsecd")
    assert r.returncode == 0, r.stderr
    assert not _installed()
    for path in ("/usr/lib/mfpsecd", "/usr/bin/mfpsecd", "/etc/mfpsecd/mfpsecd.toml"):
        assert not Path(path).exists(), path
