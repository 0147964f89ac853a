"""The shipped units pass systemd's own checks: verify (silent) and the security rating."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import ROOT
from tests.support.unit_verify import verify

pytestmark = pytest.mark.systemd

UNITS = ROOT / "systemd"
MAX_EXPOSURE = 2.5


def _fake_root(tmp: Path) -> Path:
    """A root where ExecStart resolves and the standard targets exist."""
    root = tmp / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    exe = root / "usr/bin/mfpsecd"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    for unit in UNITS.glob("mfpsecd*.*"):
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    return root


def test_units_verify_cleanly(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    units = sorted(str(p) for p in (root / "etc/systemd/system").glob("mfpsecd*"))
    assert len(units) >= 2
    assert verify(root, units) == ""


def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    unit = root / "etc/systemd/system/mfpsecd.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strcit"))
    assert "strcit" in verify(root, [str(unit)])  # proves the check above can fail


def test_service_exposure(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            "--no-pager",
            str(UNITS / "mfpsecd.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    m = re.search(r"Overall exposure level for mfpsecd\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr
    exposure = float(m.group(1))
    print(f"mfpsecd.service exposure {exposure}")
    assert exposure <= MAX_EXPOSURE


def test_service_hardening_keys() -> None:
    text = (UNITS / "mfpsecd.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "UMask=0077",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/tpmrm0 rw",
        "NoNewPrivileges=yes",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=",
        "SystemCallFilter=",
    ):
        assert line in text
    socket_unit = (UNITS / "mfpsecd.socket").read_text()
    assert "SocketMode=0660" in socket_unit


def test_the_device_profiles_firmware_slots_are_writable_under_protect_system() -> None:
    """ProtectSystem=strict makes / read-only: the slots an update writes must be listed."""
    import tomllib

    slots = tomllib.loads((ROOT / "hw" / "generic-x86.toml").read_text())["firmware"]["slots_dir"]
    writable = [
        line.split("=", 1)[1].lstrip("-")
        for line in (UNITS / "mfpsecd.service").read_text().splitlines()
        if line.startswith("ReadWritePaths=")
    ]
    assert any(slots == w or slots.startswith(w.rstrip("/") + "/") for w in writable), writable
