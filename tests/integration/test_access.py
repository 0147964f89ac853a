"""Peer admission by SO_PEERCRED: clients run as other uids through setpriv."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import daemon as ds
from tests.support import other_uids

pytestmark = pytest.mark.root

UNADMITTED_UID = 64001
PANEL_UID = 64002
SOCKET_GID = 64010  # the socket's group: lets other uids reach the socket at all
MAINT_GID = 64011

# The client needs no native code: other uids run it from a world-readable copy of the
# client side (tests/support/other_uids.py), with the base interpreter.
CLIENT = """
import json, sys
sys.path.insert(0, sys.argv[2])
from mfpsecd.keys import api as keys
from mfpsecd.client import Connection
from mfpsecd.system import api as system
from mfpsecd.base.errors import MfpsecError
try:
    with Connection(sys.argv[1]) as c:
        if sys.argv[3] == "status":
            print(json.dumps({"ok": c.call(system.GET_STATUS).state.value}))
        elif sys.argv[3] == "keys":
            print(json.dumps({"ok": c.call(keys.GET_KEY_STATUS).state}))
        else:
            print(json.dumps({"ok": [i.name for i in c.call(keys.LIST_SECRETS).secrets]}))
except MfpsecError as e:
    print(json.dumps({"error": e.code.wire_name}))
"""


def run_as(
    uid: int, gid: int, groups: list[int], socket_path: str, call: str = "status"
) -> dict[str, object]:
    groups_arg = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    r = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            *groups_arg,
            "--",
            other_uids.python(),
            "-I",
            "-c",
            CLIENT,
            socket_path,
            str(other_uids.client_tree()),
            call,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=other_uids.client_tree(),
        env={**os.environ, "HOME": "/"},
    )
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


@pytest.fixture
def admitting_daemon(short_tmp: Path):
    cfg = {
        "ipc": {"socket_group": SOCKET_GID},
        "access": {"panel_users": [PANEL_UID], "maintenance_groups": [MAINT_GID]},
    }
    # The project tree must be readable by the other uids for the client to import it.
    with ds.running(short_tmp / "d", config=cfg) as d:
        yield d


@pytest.mark.sfr("FAU_GEN.2", "FIA_UID.1")
@pytest.mark.spec("A-1", "A-10", "L-1")
def test_unadmitted_uid_gets_permission_denied(admitting_daemon: ds.DaemonProcess) -> None:
    sock = Path(admitting_daemon.socket_path)
    assert sock.stat().st_gid == SOCKET_GID
    assert sock.stat().st_mode & 0o777 == 0o660
    # Reaches the socket through its group, but the configuration does not admit it.
    r = run_as(UNADMITTED_UID, SOCKET_GID, [], str(sock))
    assert r == {"error": "org.varlink.service.PermissionDenied"}
    assert '"event":"ipc_peer_refused"' in admitting_daemon.log()
    assert f'"uid":{UNADMITTED_UID}' in admitting_daemon.log()
    # FTP_ITC.1 / FAU_GEN.1: the refused peer is in the audit log as a session failure.
    deadline = time.monotonic() + 10
    while True:
        shown = ds.mfpsec(
            sock.as_posix(), "audit", "show", "--json", "--limit", "0", "--type", "session.failure"
        )
        assert shown.returncode == 0, shown.stderr
        found = [e for e in json.loads(shown.stdout) if e["object"] == "ipc"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(e["outcome"], e["subject"]["uid"], e["details"]["reason"]) for e in found] == [
        ("failure", UNADMITTED_UID, "peer not admitted")
    ]


@pytest.mark.sfr("FMT_SMR.1")
@pytest.mark.spec("A-10")
def test_panel_uid_and_maintenance_group_are_admitted(admitting_daemon: ds.DaemonProcess) -> None:
    sock = admitting_daemon.socket_path
    assert run_as(PANEL_UID, SOCKET_GID, [], sock) == {"ok": "ready"}
    # Admitted through a supplementary group (SO_PEERGROUPS), not the primary gid.
    assert run_as(UNADMITTED_UID, SOCKET_GID, [SOCKET_GID, MAINT_GID], sock) == {"ok": "ready"}


def test_other_uids_cannot_even_reach_the_socket(admitting_daemon: ds.DaemonProcess) -> None:
    r = run_as(UNADMITTED_UID, UNADMITTED_UID, [], admitting_daemon.socket_path)
    assert r == {"error": "io.mfpsecd.Client.DaemonUnreachable"}


@pytest.mark.sfr("FIA_UAU.1")
@pytest.mark.spec("A-1", "A-10")
def test_a_maintenance_peer_without_a_session_cannot_list_the_secrets(
    admitting_daemon: ds.DaemonProcess,
) -> None:
    """The secret names include auth.user.NAME for every account: listing them needs the
    administrator role, not only membership of the maintenance group."""
    sock = admitting_daemon.socket_path
    maint = (UNADMITTED_UID, SOCKET_GID, [SOCKET_GID, MAINT_GID], sock)
    assert run_as(*maint, call="keys") == {"ok": "ready"}  # the key chain's status: allowed
    assert run_as(*maint, call="secrets") == {"error": "io.mfpsecd.Auth.AuthenticationRequired"}
    root_sees = run_as(0, 0, [], sock, call="secrets")["ok"]
    assert isinstance(root_sees, list)
