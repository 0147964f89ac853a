"""The panel's view of the S-1 posture (issue 25), from the real daemon on a simulated
board: the panel's uid (admitted as the panel, no login) asks GetPosture through the
`mfpsec posture` client and gets every item (the 13 of S-1 and the USB port policy),
each with a state, a setting and since when; the items follow what the administrator
does (A-3: first the prompt to set a password, then on; a backup schedule; an address
filter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.base.posture import TITLES, PostureId
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, SOCKET_GID, as_panel
from tests.support.netlab import Lab, dut_board

pytestmark = pytest.mark.root

PANEL_UID = 64031
SIZE = 8 << 20
DISKS = [
    {"id": "hdd0", "path": "disks/hdd0.img", "medium": "hdd", "sanitizable": True},
    {"id": "ssd0", "path": "disks/ssd0.img", "medium": "ssd", "sanitizable": True},
]
CONFIG: dict[str, dict[str, Any]] = {
    "ipc": {"socket_group": SOCKET_GID},
    "access": {"panel_users": [PANEL_UID]},
    "auth": {"argon2_memory_kib": 8192, "argon2_iterations": 1},
}


def _posture(d: ds.DaemonProcess) -> dict[str, dict[str, str]]:
    r = as_panel(PANEL_UID, d.socket_path, "posture", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [i["id"] for i in doc["items"]] == [p.value for p in PostureId]  # every item, in order
    return {i["id"]: i for i in doc["items"]}


def test_the_panel_renders_every_posture_item_and_sees_them_change(
    short_tmp: Path, netlab: Lab
) -> None:
    short_tmp.chmod(0o711)
    board = {
        **dut_board(netlab),
        "disks": [{**d, "size_bytes": SIZE} for d in DISKS],
    }
    with ds.running(short_tmp / "d", config=CONFIG, board=board) as d:
        first = _posture(d)
        states = {k: v["state"] for k, v in first.items()}
        assert set(states.values()) <= {"on", "off", "not_applicable", "not_managed"}
        assert all(v["since"] for v in first.values())
        # the device ships with no administrator password; the panel shows the prompt.
        admin = first["admin-password"]
        assert (admin["state"], admin["setting"]) == ("off", "unset")
        assert "set one now" in admin["detail"]
        assert states["storage-encryption"] == "on"
        assert first["storage-encryption"]["setting"].startswith("AES-256-GCM")
        # The job store is on the simulated HDD: overwritten unless its filesystem
        # defeats an overwrite in place (then off, and the detail says which).
        temporary = first["temporary-data-overwrite"]
        assert temporary["state"] == "on" or "in place" in temporary["detail"]
        assert first["auto-document-deletion"]["setting"] == "box documents deleted after 30 days"
        assert first["encrypted-pdf-deletion"]["setting"] == "encrypted PDFs deleted after 1 day"
        assert states["id-print-deletion"] == states["secure-document-deletion"] == "on"
        # Image files: nothing to lock with an ATA password on this board.
        assert states["storage-lock-password"] == "not_applicable"
        assert (states["backup-schedule"], states["tpm"]) == ("off", "on")
        assert first["tpm"]["setting"].startswith("swtpm TPM")
        assert states["ip-filter"] == "off"  # no ranges yet: every source reaches the ports
        assert states["firmware-verification"] == "not_applicable"  # no [firmware] here
        assert states["audit-forwarding"] == "off"

        # The panel's screen: every item's title with its state.
        view = as_panel(PANEL_UID, d.socket_path, "posture")
        assert view.returncode == 0, view.stderr
        for item in PostureId:
            line = next(ln for ln in view.stdout.splitlines() if ln.startswith(TITLES[item]))
            assert states[item.value] in line

        # The administrator acts; the panel sees it.
        def ok(*args: str, stdin: str | None = None) -> str:
            r = ds.mfpsec(d.socket_path, *args, stdin=stdin, timeout=120)
            assert r.returncode == 0, r.stderr
            return r.stdout

        ok("users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW)
        backups = short_tmp / "backups"
        backups.mkdir()
        ok(
            "keys",
            "backup-schedule",
            "--every",
            "7",
            "--to",
            str(backups),
            "--passphrase-file",
            "-",
            stdin="Backup-passphrase-2026!\n",
        )
        ok("net", "deny", "203.0.113.0/24")
        after = _posture(d)
        assert after["admin-password"]["state"] == "on"
        assert after["admin-password"]["since"] > admin["since"]
        assert after["backup-schedule"]["state"] == "on"
        assert after["backup-schedule"]["setting"] == f"every 7 day(s) to {backups}, keeping 5"
        assert len(list(backups.iterdir())) == 1  # the first backup ran when it was set
        assert after["ip-filter"]["state"] == "on"
        # What did not change keeps its since.
        assert after["storage-encryption"]["since"] == first["storage-encryption"]["since"]
