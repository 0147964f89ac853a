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
MAX_HELPER_EXPOSURE = 3.5


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


@pytest.mark.parametrize(
    ("unit", "limit"),
    [("mfpsecd.service", MAX_EXPOSURE), ("mfpsecd-purge@.service", MAX_HELPER_EXPOSURE)],
)
def test_service_exposure(tmp_path: Path, unit: str, limit: float) -> None:
    # A template is rated as one of its instances.
    instance = tmp_path / unit.replace("@.", "@0.")
    shutil.copy(UNITS / unit, instance)
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(instance)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    m = re.search(rf"Overall exposure level for {re.escape(instance.name)}: (\d+\.\d+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr
    exposure = float(m.group(1))
    print(f"{unit} exposure {exposure}")
    assert exposure <= limit


def test_the_purge_helper_holds_exactly_the_device_commands_capabilities() -> None:
    """The daemon holds neither CAP_SYS_ADMIN nor CAP_SYS_RAWIO; the helper holds those
    two and nothing else, reaches no network, and is reachable by the daemon's group."""
    daemon = (UNITS / "mfpsecd.service").read_text()
    assert "CapabilityBoundingSet=CAP_NET_ADMIN\n" in daemon
    settings = [x for x in daemon.splitlines() if not x.startswith("#")]
    assert not [x for x in settings if "SYS_ADMIN" in x or "SYS_RAWIO" in x]
    helper = (UNITS / "mfpsecd-purge@.service").read_text()
    for line in (
        "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SYS_RAWIO\n",
        "AmbientCapabilities=CAP_SYS_ADMIN CAP_SYS_RAWIO\n",
        "SecureBits=noroot noroot-locked",
        "NoNewPrivileges=yes",
        "PrivateNetwork=yes",
        "RestrictAddressFamilies=AF_UNIX\n",
        "DevicePolicy=closed",
        "StandardInput=socket",
        "ProtectSystem=strict",
    ):
        assert line in helper, line
    socket_unit = (UNITS / "mfpsecd-purge.socket").read_text()
    for line in ("Accept=yes", "SocketGroup=mfpsecd", "SocketMode=0660"):
        assert line in socket_unit, line
    # The configuration shipped with it uses it, at the socket's path.
    shipped = (ROOT / "etc" / "mfpsecd.toml").read_text()
    listen = next(x for x in socket_unit.splitlines() if x.startswith("ListenStream="))
    assert f'purge_helper = "{listen.split("=", 1)[1]}"' in shipped


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
