"""The real `mfpsec` CLI run as other uids (maintenance group members) through setpriv,
each with its own runtime directory, against a daemon started with `CONFIG`: what every
end-to-end test of a logged-in administrator uses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support import other_uids

SOCKET_GID = 64010
MAINT_GID = 64011
ALICE_UID = 64021  # the administrator at the CLI
MALLORY_UID = 64022  # another maintenance user
ADMIN_PW = "Adm1n-password-2026"
CE_PW = "Service-visit-2026"  # the service engineer's

# The CLI needs no native code: other uids run it from a world-readable copy of the
# client side (tests/support/other_uids.py), with the base interpreter.
CLI = """
import sys
sys.path.insert(0, sys.argv.pop(1))
from mfpsecd.cli.main import cli
cli(prog_name="mfpsec")
"""

CONFIG: dict[str, dict[str, Any]] = {
    "ipc": {"socket_group": SOCKET_GID},
    "access": {"maintenance_groups": [MAINT_GID]},
    # The smallest cost the configuration accepts: these tests are about the flows.
    "auth": {"argon2_memory_kib": 8192, "argon2_iterations": 1},
}


class Cli:
    def __init__(self, socket_path: str, runtime: Path) -> None:
        self.socket_path = socket_path
        self.runtime = runtime

    def runtime_dir(self, uid: int) -> Path:
        d = self.runtime / str(uid)
        d.mkdir(mode=0o700, exist_ok=True)
        os.chown(d, uid, uid)
        return d

    def __call__(
        self, uid: int, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(
            uid,
            f"{SOCKET_GID},{MAINT_GID}",
            self.socket_path,
            *args,
            stdin=stdin,
            env={"XDG_RUNTIME_DIR": str(self.runtime_dir(uid))},
        )

    def ok(self, uid: int, *args: str, stdin: str | None = None) -> str:
        r = self(uid, *args, stdin=stdin)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def add_service_engineer(self, admin_uid: int, name: str = "tech1") -> None:
        """The logged-in administrator at admin_uid adds a service engineer (CE_PW)."""
        self.ok(
            admin_uid,
            "users",
            "add",
            name,
            "--role",
            "service",
            "--permanent",
            "--password-file",
            "-",
            stdin=CE_PW,
        )

    def fails(self, uid: int, *args: str, stdin: str | None = None) -> str:
        r = self(uid, *args, stdin=stdin)
        assert r.returncode != 0, (args, r.stdout)
        return r.stderr


def as_panel(uid: int, socket_path: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run as a panel uid (listed in access.panel_users): it reaches the socket
    through its group only, is admitted as the panel, and never logs in."""
    return run_cli(uid, str(SOCKET_GID), socket_path, *args)


def run_cli(
    uid: int,
    groups: str,
    socket_path: str,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real CLI as uid with these supplementary groups, from the world-readable copy
    of the client side."""
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            f"--groups={groups}",
            "--",
            other_uids.python(),
            "-I",
            "-c",
            CLI,
            str(other_uids.client_tree()),
            "--socket",
            socket_path,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=other_uids.client_tree(),
        input=stdin,
        env={"PATH": os.environ["PATH"], "HOME": "/", **(env or {})},
    )
