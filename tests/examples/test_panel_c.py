"""The C panel client (examples/panel-c; issue 25), built with meson against json-c and
run as the panel's uid against a live daemon: GetInfo, the posture screen, a login with
the password read from stdin (sent as its base64, as the IDL says), a job-store Put
passing the file's descriptor over the side channel, and the event stream."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.base.posture import PostureId
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, SOCKET_GID

pytestmark = pytest.mark.root

PANEL_UID = 64051
SOURCE = ds.ROOT / "examples" / "panel-c"
CONFIG: dict[str, dict[str, Any]] = {
    "ipc": {"socket_group": SOCKET_GID},
    "access": {"panel_users": [PANEL_UID]},
    "auth": {"argon2_memory_kib": 8192, "argon2_iterations": 1},
}


def _build(into: Path) -> Path:
    meson = str(Path(sys.executable).parent / "meson")
    for args in (["setup", str(into), str(SOURCE)], ["compile", "-C", str(into)]):
        r = subprocess.run([meson, *args], capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    binary = into / "mfpsec-panel"
    into.chmod(0o755)
    return binary


def _panel(binary: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={PANEL_UID}",
            f"--regid={PANEL_UID}",
            f"--groups={SOCKET_GID}",
            "--",
            str(binary),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        input=stdin,
        env={"PATH": os.environ["PATH"]},
    )


def test_the_c_panel_client_does_what_a_panel_does(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    binary = _build(short_tmp / "build")
    job = short_tmp / "scan.pdf"
    job.write_bytes(b"%PDF-1.7 a scanned page " * 1000)
    job.chmod(0o644)
    with ds.running(short_tmp / "d", config=CONFIG) as d:
        sock = d.socket_path
        info = _panel(binary, sock, "info")
        assert info.returncode == 0, info.stderr
        assert "mfpsecd" in info.stdout and "io.mfpsecd.System" in info.stdout

        screen = _panel(binary, sock, "posture")
        assert screen.returncode == 0, screen.stderr
        lines = screen.stdout.splitlines()
        assert len(lines) == len(PostureId)  # every S-1 item, and the USB port policy (U-4)
        assert lines[0].startswith("Administrator password") and " off " in lines[0]

        init = ds.mfpsec(sock, "users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW)
        assert init.returncode == 0, init.stderr
        ok = _panel(binary, sock, "login", "admin", stdin=ADMIN_PW + "\n")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "logged in: admin (administrator)"

        stored = _panel(binary, sock, "put", "admin", str(job), "job-7", "scan.pdf", stdin=ADMIN_PW)
        assert stored.returncode == 0, stored.stderr
        login_line, stored_line = stored.stdout.splitlines()
        assert login_line == "logged in: admin (administrator)"
        assert stored_line.startswith("stored ") and stored_line.endswith(" (24000 bytes)")
        listed = ds.mfpsec(sock, "store", "list")
        assert "scan.pdf" in listed.stdout

        # Three wrong passwords lock the account: the alert reaches the panel's stream.
        for _ in range(3):
            wrong = _panel(binary, sock, "login", "admin", stdin="Not-the-password-1\n")
            assert wrong.returncode == 1
        assert "io.mfpsecd.Auth" in wrong.stderr
        events = _panel(binary, sock, "events", "0", "1")
        assert events.returncode == 0, events.stderr
        first = events.stdout.splitlines()
        assert any(" account locked " in line and line.endswith(" admin") for line in first)
        assert first[-1].startswith("last_seq ")
