"""Authentication end to end: the real daemon, and the real `mfpsec` CLI run as other uids
(maintenance group members) through setpriv, each with its own runtime directory."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.client import Connection
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CONFIG, MALLORY_UID, Cli

pytestmark = pytest.mark.root

BOB_TEMP = "Temporary-2026-pass"
BOB_OWN = "My-chosen-password-9"


@pytest.fixture
def env(short_tmp: Path) -> Iterator[tuple[ds.DaemonProcess, Cli]]:
    short_tmp.chmod(0o711)
    with ds.running(short_tmp / "d", config=CONFIG, tpm="none") as d:
        yield d, Cli(d.socket_path, short_tmp / "rt")


@pytest.mark.sfr("FIA_ATD.1", "FIA_UAU.1", "FIA_UID.1", "FIA_USB.1", "FMT_MTD.1", "FMT_SMF.1")
@pytest.mark.spec("A-1", "A-10", "A-2", "A-7", "F-3", "K-3", "L-3", "N-2", "U-4")
def test_first_start_login_roles_sessions_and_logout(env: tuple[ds.DaemonProcess, Cli]) -> None:
    d, cli = env
    (cli.runtime / "").mkdir(exist_ok=True)
    status = json.loads(cli.ok(ALICE_UID, "status", "--json"))
    assert status["notices"] == ["administrator-unset"]
    assert "no administrator password is set" in cli.ok(ALICE_UID, "status")
    cli.ok(ALICE_UID, "users", "init", "alice", "--password-file", "-", stdin=ADMIN_PW)
    assert json.loads(cli.ok(ALICE_UID, "status", "--json"))["notices"] == []
    assert "AlreadyInitialized" in cli.fails(
        ALICE_UID, "users", "init", "mallory", "--password-file", "-", stdin=ADMIN_PW
    )

    # Without a session the maintenance peer may read status, nothing administrative.
    err = cli.fails(ALICE_UID, "users", "list")
    assert "io.mfpsecd.Auth.AuthenticationRequired" in err and "log in first" in err
    out = cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
    assert "logged in as alice (administrator)" in out
    token_file = next((cli.runtime / str(ALICE_UID) / "mfpsec").iterdir())
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.stat().st_uid == ALICE_UID
    who = json.loads(cli.ok(ALICE_UID, "whoami", "--json"))
    assert (who["user"], who["role"], who["peer_class"]) == (
        "alice",
        "administrator",
        "maintenance",
    )
    assert "users.admin" in who["privileges"]
    cli.ok(
        ALICE_UID, "users", "add", "bob", "--role", "user", "--password-file", "-", stdin=BOB_TEMP
    )
    listing = cli.ok(ALICE_UID, "users", "list")
    assert "bob" in listing and "(temp)" in listing

    # The token is bound to alice's uid: mallory holding a copy gets nothing.
    stolen = cli.runtime_dir(MALLORY_UID) / "mfpsec"
    stolen.mkdir(mode=0o700, exist_ok=True)
    os.chown(stolen, MALLORY_UID, MALLORY_UID)
    (stolen / token_file.name).write_bytes(token_file.read_bytes())
    os.chown(stolen / token_file.name, MALLORY_UID, MALLORY_UID)
    (stolen / token_file.name).chmod(0o600)
    assert "AuthenticationRequired" in cli.fails(MALLORY_UID, "users", "list")

    # A wrong rule shows the key path; a good change applies.
    err = cli.fails(ALICE_UID, "policy", "set", "lockout.max_failures=11")
    assert "lockout.max_failures" in err and "<= 10" in err
    out = cli.ok(
        ALICE_UID,
        "policy",
        "set",
        "password.min_length=15",
        "password.required_classes=digit,upper",
    )
    assert "password.min_length = 15" in out
    assert "password.required_classes = digit,upper" in cli.ok(ALICE_UID, "policy", "show")
    # FMT_MTD.1: the record says which keys changed, from what, to what.
    shown = ds.mfpsec(
        d.socket_path, "audit", "show", "--json", "--limit", "0", "--type", "management"
    )
    (change,) = [
        e["details"]
        for e in json.loads(shown.stdout)
        if e["object"] == "auth policy" and e["outcome"] == "success"
    ]
    assert change["changed"] == "auth.password.min_length, auth.password.required_classes"
    assert (change["old.auth.password.min_length"], change["new.auth.password.min_length"]) == (
        "12",
        "15",
    )
    assert (
        change["old.auth.password.required_classes"],
        change["new.auth.password.required_classes"],
    ) == ("(none)", "digit, upper")
    err = cli.fails(
        ALICE_UID,
        "users",
        "add",
        "carol",
        "--role",
        "auditor",
        "--password-file",
        "-",
        stdin="alllowercase-but-long",
    )
    assert "PasswordRejected" in err and "complexity" in err

    cli.ok(ALICE_UID, "logout")
    assert not token_file.exists()
    assert "AuthenticationRequired" in cli.fails(ALICE_UID, "users", "list")
    log = d.log()
    assert '"event":"ipc_permission_denied"' in log
    assert ADMIN_PW not in log and BOB_TEMP not in log


@pytest.mark.sfr("FAU_STG.1", "FIA_AFL.1")
@pytest.mark.spec("A-4", "A-5", "A-6", "L-2")
def test_lockout_survives_sigkill_unlock_and_forced_change(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    root = short_tmp / "d"
    cli = None
    with ds.running(root, config=CONFIG, tpm="none") as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime).mkdir(exist_ok=True)
        cli.ok(0, "users", "init", "alice", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(0, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(0, "users", "add", "bob", "--role", "user", "--password-file", "-", stdin=BOB_TEMP)
        for i in range(3):
            err = cli.fails(
                MALLORY_UID, "login", "-u", "bob", "--password-file", "-", stdin=f"wrong-{i}"
            )
            assert "AuthenticationFailed" in err
        err = cli.fails(MALLORY_UID, "login", "-u", "bob", "--password-file", "-", stdin=BOB_TEMP)
        assert "io.mfpsecd.Auth.AccountLocked" in err and "retry_after_s=1800" in err
        d.stop(signal.SIGKILL)
    with ds.running(root, config=CONFIG, tpm="none") as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        assert "AccountLocked" in cli.fails(
            MALLORY_UID, "login", "-u", "bob", "--password-file", "-", stdin=BOB_TEMP
        )
        cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
        assert "3 failed attempts" in cli.ok(ALICE_UID, "users", "unlock", "bob")
        out = cli(MALLORY_UID, "login", "-u", "bob", "--password-file", "-", stdin=BOB_TEMP)
        assert out.returncode == 0 and "temporary password" in out.stderr
        err = cli.fails(MALLORY_UID, "audit", "show")
        assert "AuthenticationRequired" in err and "change the password first" in err
        cli.ok(MALLORY_UID, "passwd", "--password-file", "-", stdin=f"{BOB_TEMP}\n{BOB_OWN}")
        who = json.loads(cli.ok(MALLORY_UID, "whoami", "--json"))
        assert who["must_change"] == "" and who["role"] == "user"
        # A normal user still may not read the audit log.
        assert "PermissionDenied" in cli.fails(MALLORY_UID, "audit", "show")
        events = cli.ok(0, "audit", "show", "--json")
    types = [e["type"] for e in json.loads(events)]
    assert types.count("auth.lockout") == 1
    assert "auth.unlock" in types and "role.change" in types


def test_a_login_name_with_terminal_controls_is_refused_at_the_api(
    env: tuple[ds.DaemonProcess, Cli],
) -> None:
    """Item 7 of the audit issue: ESC/CR in a login name (no authentication needed) made a
    failed login display as a success in `audit show`. The API refuses such names before
    anything is looked up, audited or counted; an ordinary unknown name still fails as
    AuthenticationFailed and is audited."""
    d, _ = env
    forged = ["admin\x1b[2K\r2026-12-05 auth.login success admin", "ad\u202emin", "a\x9bb"]
    with Connection(d.socket_path) as conn:
        for name in forged:
            with pytest.raises(MfpsecError) as refused:
                conn.call("io.mfpsecd.Auth.Login", {"user": name, "password": "eA=="})
            assert refused.value.code is ErrorCode.INVALID_PARAMETER
            assert refused.value.params.get("parameter") == "user"
        with pytest.raises(MfpsecError) as unknown:
            conn.call("io.mfpsecd.Auth.Login", {"user": "nobody-here", "password": "eA=="})
        assert unknown.value.code is ErrorCode.AUTHENTICATION_FAILED
    shown = ds.mfpsec(
        d.socket_path, "audit", "show", "--json", "--limit", "0", "--type", "auth.login"
    )
    logins = [e["object"] for e in json.loads(shown.stdout)]
    assert "nobody-here" in logins and not any("\x1b" in o or "\u202e" in o for o in logins)
