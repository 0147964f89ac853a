"""Clients of io.mfpsecd.Remote (and of the interfaces a manage window opens) run under
their own uids, as the panel, the remote-panel agent and the fleet agent are on a device:
each call a subprocess through setpriv on the world-readable client copy."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tests.support import other_uids
from tests.support.auth_cli import SOCKET_GID

PANEL_UID, AGENT_UID, FLEET_UID = 64041, 64042, 64043
CONFIG: dict[str, dict[str, Any]] = {
    "ipc": {"socket_group": SOCKET_GID},
    "access": {
        "panel_users": [PANEL_UID],
        "remote_agent_users": [AGENT_UID],
        "fleet_agent_users": [FLEET_UID],
    },
    "remote": {"enabled": True},
}
# An agent: one call of a capability's interface, its reply (or error) as JSON on stdout.
AGENT = """
import importlib, json, sys
sys.path.insert(0, sys.argv.pop(1))
import msgspec
from mfpsecd.base.errors import MfpsecError
from mfpsecd.client import Connection
api = importlib.import_module(f"mfpsecd.{sys.argv[2]}.api")
method, params = getattr(api, sys.argv[3]), json.loads(sys.argv[4])
try:
    with Connection(sys.argv[1]) as conn:
        reply = conn.call(method, msgspec.convert(params, method.params))
    print(msgspec.json.encode(reply).decode())
except MfpsecError as exc:
    print(json.dumps({"error": exc.code.wire_name, **{k: str(v) for k, v in exc.params.items()}}))
"""


def call_as(
    uid: int, sock: str, method: str, capability: str = "remote", /, **params: object
) -> dict[str, Any]:
    done = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            f"--groups={SOCKET_GID}",
            "--",
            other_uids.python(),
            "-I",
            "-c",
            AGENT,
            str(other_uids.client_tree()),
            sock,
            capability,
            method,
            json.dumps(params),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=other_uids.client_tree(),
        env={"PATH": os.environ["PATH"], "HOME": "/"},
    )
    assert done.returncode == 0, done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply
