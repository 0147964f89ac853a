"""FTA_SSL.3 on the real daemon (the assurance activity: set the inactivity period, wait
it out, see the session end): the administrator sets the idle time to its least (one
minute), a service engineer's and the administrator's sessions left idle past it are
refused on their next call, and each end is in the audit log with the reason."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CE_PW, CONFIG, MALLORY_UID, Cli

pytestmark = [pytest.mark.root, pytest.mark.slow]

IDLE_MINUTES = 1  # the least the policy takes


def _audit(d: ds.DaemonProcess, event_type: str) -> list[dict[str, Any]]:
    shown = ds.mfpsec(
        d.socket_path, "audit", "show", "--json", "--limit", "0", "--type", event_type
    )
    assert shown.returncode == 0, shown.stderr
    records: list[dict[str, Any]] = json.loads(shown.stdout)
    return records


@pytest.mark.sfr("FTA_SSL.3", "FIA_USB.1")
@pytest.mark.spec("A-7")
def test_an_idle_session_ends_after_the_administrators_idle_time(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    with ds.running(short_tmp / "d", config=CONFIG, tpm="none") as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        cli.ok(ALICE_UID, "users", "init", "alice", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
        cli.add_service_engineer(ALICE_UID)
        out = cli.ok(ALICE_UID, "policy", "set", f"session.idle_minutes={IDLE_MINUTES}")
        assert f"session.idle_minutes = {IDLE_MINUTES}" in out
        cli.ok(MALLORY_UID, "login", "-u", "tech1", "--password-file", "-", stdin=CE_PW)
        assert json.loads(cli.ok(MALLORY_UID, "whoami", "--json"))["user"] == "tech1"
        # Kept alive by use: a call within the idle time keeps the session.
        time.sleep(IDLE_MINUTES * 60 * 0.5)
        assert json.loads(cli.ok(MALLORY_UID, "whoami", "--json"))["user"] == "tech1"
        time.sleep(IDLE_MINUTES * 60 + 2)
        err = cli.fails(MALLORY_UID, "wipe", "targets")
        assert "AuthenticationRequired" in err
        records = _audit(d, "maintenance.session")
        ends = [e for e in records if e["details"].get("phase") == "end"]
        assert [(e["object"], e["details"]["reason"]) for e in ends] == [("tech1", "timeout")]
        assert float(ends[0]["details"]["duration_s"]) >= IDLE_MINUTES * 60
        # The administrator's session, idle as long, ended too: recorded as auth.logout
        # with the reason (her own logout would say nothing of a reason).
        assert "AuthenticationRequired" in cli.fails(ALICE_UID, "users", "list")
        for _ in range(50):
            logouts = _audit(d, "auth.logout")
            if logouts:
                break
            time.sleep(0.1)
        assert [(e["object"], e["details"].get("reason")) for e in logouts] == [
            ("alice", "timeout")
        ]
