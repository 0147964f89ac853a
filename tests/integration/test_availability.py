"""No caller can lock the panel and the CLI out by holding connections (issue 25): a peer
the configuration does not admit is closed right after its credentials are read and
holds no slot; an admitted one that opens 200 connections and says nothing gets at most
the shared slots and its class's reserve, and is closed after ipc.first_call_timeout_s;
meanwhile the panel and root's CLI connect and answer at once."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import daemon as ds
from tests.support import other_uids
from tests.support.auth_cli import ALICE_UID, MAINT_GID, SOCKET_GID, Cli, as_panel

pytestmark = pytest.mark.root

STRANGER_UID = 64041
PANEL_UID = 64042
SILENT_S = 5  # ipc.first_call_timeout_s here
CONFIG: dict[str, dict[str, Any]] = {
    "ipc": {"socket_group": SOCKET_GID, "first_call_timeout_s": SILENT_S},
    "access": {"panel_users": [PANEL_UID], "maintenance_groups": [MAINT_GID]},
}

# Opens N connections and holds them without a word; on a line from stdin, reports how
# many the daemon has closed (and of those, how many it told why first).
HOLDER = """
import json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    except OSError:
        continue
    socks.append(s)
print("holding", flush=True)
gone = set()
told = 0
for line in sys.stdin:
    for i, s in enumerate(socks):
        if i in gone:
            continue
        s.setblocking(False)
        try:
            data = s.recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        gone.add(i)
        told += b"PermissionDenied" in data
    print(json.dumps({"connected": len(socks), "closed": len(gone), "told": told}), flush=True)
"""


def _holder(uid: int, groups: str, path: str, n: int) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            f"--groups={groups}",
            "--",
            other_uids.python(),
            "-I",
            "-c",
            HOLDER,
            path,
            str(n),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": "/"},
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "holding"
    return p


def _report(p: subprocess.Popen[str], *, last: bool = True) -> dict[str, int]:
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write("\n")
    p.stdin.flush()
    out = json.loads(p.stdout.readline())
    if last:
        p.stdin.close()
        p.wait(10)
    return {k: int(v) for k, v in out.items()}


def test_two_hundred_idle_connections_lock_nobody_out(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    with ds.running(short_tmp / "d", config=CONFIG, tpm="none") as d:
        path = d.socket_path
        stranger = _holder(STRANGER_UID, str(SOCKET_GID), path, 200)
        hog = _holder(ALICE_UID, f"{SOCKET_GID},{MAINT_GID}", path, 200)
        started = time.monotonic()

        # The panel and root's CLI get in and answer while both hold their connections.
        panel = as_panel(PANEL_UID, path, "status", "--json")
        assert panel.returncode == 0, panel.stderr
        assert json.loads(panel.stdout)["board"] == "testboard"  # answered
        root = ds.mfpsec(path, "status", "--json")
        assert root.returncode == 0, root.stderr
        early = _report(hog, last=False)
        assert time.monotonic() - started < SILENT_S  # before the silent ones are closed
        # 64 connections, 4 kept for each of the 3 admitted classes: this class gets the
        # 52 shared and its own 4; the rest were closed at once.
        assert early["connected"] - early["closed"] == 56

        refused = _report(stranger)
        assert refused["closed"] == refused["connected"] == 200  # closed at once, all of them
        assert refused["told"] > 0  # told why (PermissionDenied) before the close

        # The admitted hog: held what it was given, then closed for saying nothing.
        time.sleep(max(0.0, SILENT_S + 3 - (time.monotonic() - started)))
        held = _report(hog)
        assert held["closed"] == held["connected"] == 200
        # And the maintenance group's own CLI is in again.
        cli = Cli(path, short_tmp / "rt")
        (short_tmp / "rt").mkdir(exist_ok=True)
        again = cli(ALICE_UID, "status", "--json")
        assert again.returncode == 0, again.stderr
        log = d.log()
        assert '"event":"ipc_silent_close"' in log
        assert '"event":"ipc_peer_refused"' in log
