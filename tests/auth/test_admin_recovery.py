"""Root without an administrator's session manages no account (it could otherwise make
itself an administrator and lift the firmware rewrite lock); an administrator whose
password is lost is recovered by root *with* the code only the operation panel shows."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.auth import api as auth
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.client import Connection
from tests.support import daemon as ds
from tests.support import other_uids
from tests.support.auth_cli import ADMIN_PW, CONFIG, MAINT_GID, MALLORY_UID, SOCKET_GID, Cli

pytestmark = pytest.mark.root

PANEL_UID = 64023
NEW_PW = "Recovered-temp-2026!"
OWN_PW = "Chosen-after-recovery-9"

# What the panel process calls: the recovery waiting for its code.
PANEL = """
import json, sys
sys.path.insert(0, sys.argv[2])
from mfpsecd.auth import api as auth
from mfpsecd.client import Connection
from mfpsecd.base.errors import MfpsecError
try:
    with Connection(sys.argv[1]) as c:
        print(json.dumps([[p.request, p.user, p.uid, p.code, p.expires_in_s]
                          for p in c.call(auth.PENDING_RECOVERIES).requests]))
except MfpsecError as e:
    print(json.dumps({"error": e.code.wire_name}))
"""


def _as(uid: int, script: str, *args: str) -> object:
    r = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            f"--groups={SOCKET_GID}",
            "--",
            other_uids.python(),
            "-I",
            "-c",
            script,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=other_uids.client_tree(),
        env={"PATH": os.environ["PATH"], "HOME": "/"},
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _panel(d: ds.DaemonProcess) -> list[list[Any]]:
    shown = _as(PANEL_UID, PANEL, d.socket_path, str(other_uids.client_tree()))
    assert isinstance(shown, list), shown
    return shown


@pytest.fixture
def env(short_tmp: Path) -> Iterator[tuple[ds.DaemonProcess, Cli]]:
    short_tmp.chmod(0o711)
    config = {**CONFIG, "access": {"maintenance_groups": [MAINT_GID], "panel_users": [PANEL_UID]}}
    with ds.running(short_tmp / "d", config=config, tpm="none") as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        cli.runtime.mkdir(exist_ok=True)
        cli.ok(0, "users", "init", "alice", "--password-file", "-", stdin=ADMIN_PW)
        yield d, cli


@pytest.mark.sfr("FIA_UAU.1", "FMT_MTD.1")
@pytest.mark.spec("A-1", "A-10", "K-3")
def test_root_without_a_session_makes_no_administrator(env: tuple[ds.DaemonProcess, Cli]) -> None:
    _, cli = env
    assert "alice" in cli.ok(0, "users", "list")  # reading the accounts: yes
    for args, stdin in (
        (
            (
                "users",
                "add",
                "root2",
                "--role",
                "administrator",
                "--permanent",
                "--password-file",
                "-",
            ),
            "Root2-password-2026",
        ),
        (
            ("users", "passwd", "alice", "--permanent", "--password-file", "-"),
            "Taken-over-pass-2026",
        ),
        (("users", "unlock", "alice"), None),
        (("users", "remove", "alice", "--yes"), None),
        (("policy", "set", "lockout.max_failures=10"), None),
    ):
        err = cli.fails(0, *args, stdin=stdin)
        assert "io.mfpsecd.Auth.AuthenticationRequired" in err, (args, err)
    assert "AlreadyInitialized" in cli.fails(
        0, "users", "init", "root2", "--password-file", "-", stdin="Root2-password-2026"
    )
    assert [u["user"] for u in json.loads(cli.ok(0, "users", "list", "--json"))] == ["alice"]
    # The firmware lock stays the administrator's: root cannot reach an administrator.
    assert "AuthenticationFailed" in cli.fails(
        0, "login", "-u", "alice", "--password-file", "-", stdin="Taken-over-pass-2026"
    )
    # With alice's session root manages accounts as she does.
    cli.ok(0, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
    cli.ok(
        0,
        "users",
        "add",
        "bob",
        "--role",
        "user",
        "--password-file",
        "-",
        stdin="Temporary-2026-pass",
    )


def test_recovery_needs_the_code_shown_at_the_panel(env: tuple[ds.DaemonProcess, Cli]) -> None:
    d, cli = env
    assert _panel(d) == []
    # Only root asks; a maintenance user cannot, and only the panel is given the code.
    err = cli.fails(
        MALLORY_UID,
        "users",
        "recover",
        "alice",
        "--password-file",
        "-",
        stdin=f"12345678\n{NEW_PW}",
    )
    assert "PermissionDenied" in err
    with Connection(d.socket_path) as conn:
        with pytest.raises(MfpsecError) as refused:
            conn.call(auth.PENDING_RECOVERIES)
        assert refused.value.code is ErrorCode.PERMISSION_DENIED  # root is not the panel
        r = conn.call(auth.REQUEST_RECOVERY, auth.UserParams("alice"))
        [[request, user, uid, code, expires]] = _panel(d)
        assert (request, user, uid) == (r.request, "alice", 0) and 0 < expires <= 300
        assert len(code) == 8 and code.isdigit()
        # Three wrong codes end the request: the right one then comes too late.
        for _ in range(3):
            with pytest.raises(MfpsecError) as wrong:
                wrong_code = "00000000" if code != "00000000" else "11111111"
                conn.call(
                    auth.COMPLETE_RECOVERY,
                    auth.CompleteRecoveryParams(request, wrong_code, bytearray(NEW_PW.encode())),
                )
            assert wrong.value.code is ErrorCode.AUTHENTICATION_FAILED
        with pytest.raises(MfpsecError) as ended:
            conn.call(
                auth.COMPLETE_RECOVERY,
                auth.CompleteRecoveryParams(request, code, bytearray(NEW_PW.encode())),
            )
        assert ended.value.code is ErrorCode.RECOVERY_NOT_PENDING
        assert _panel(d) == []

    # The service engineer at the device: the CLI asks, the panel shows, a person types.
    recover = subprocess.Popen(
        [
            *ds.MFPSEC,
            "--socket",
            d.socket_path,
            "users",
            "recover",
            "alice",
            "--password-file",
            "-",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ds.ROOT,
    )
    assert recover.stderr is not None
    asked = recover.stderr.readline()
    assert "recovery of administrator alice requested" in asked
    [[_, _, _, code, _]] = _panel(d)
    out, err = recover.communicate(f"{code}\n{NEW_PW}\n", timeout=60)
    assert recover.returncode == 0, out + err
    assert "administrator alice recovered" in out
    assert _panel(d) == []

    # The temporary password works once, for choosing a new one; the lockout is lifted.
    cli.ok(0, "login", "-u", "alice", "--password-file", "-", stdin=NEW_PW)
    assert json.loads(cli.ok(0, "whoami", "--json"))["must_change"]
    assert "AuthenticationRequired" in cli.fails(
        0,
        "users",
        "add",
        "carol",
        "--role",
        "user",
        "--password-file",
        "-",
        stdin="Temporary-2026-pass",
    )
    cli.ok(0, "passwd", "--password-file", "-", stdin=f"{NEW_PW}\n{OWN_PW}")
    cli.ok(0, "login", "-u", "alice", "--password-file", "-", stdin=OWN_PW)
    events = json.loads(cli.ok(0, "audit", "show", "--type", "role.change", "--json"))
    actions = [
        (e["outcome"], e["details"]["action"])
        for e in events
        if e["details"].get("phase") == "recovery"
    ]
    assert actions.count(("success", "recovery requested")) == 2
    assert ("failure", "administrator recovered") in actions
    assert actions[-1] == ("success", "administrator recovered")
    assert code not in d.log() and NEW_PW not in d.log()
