"""io.mfpsecd.Remote through the daemon, each caller under its own uid (SO_PEERCRED): a
remote-panel agent, the panel and a fleet agent, each admitted only to its own calls;
the code reaches the panel and nobody else; root opens a manage window."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.support import daemon as ds
from tests.support.auth_cli import as_panel
from tests.support.remote_peers import AGENT_UID, CONFIG, FLEET_UID, PANEL_UID, call_as


def test_each_peer_makes_only_its_own_calls(short_tmp: Path) -> None:
    with ds.running(short_tmp / "d", tpm="none", config=CONFIG) as d:
        sock = d.socket_path
        asked = call_as(AGENT_UID, sock, "REQUEST_SESSION", remote="operator@vendor.example")
        assert asked["phase"] == "code" and asked["code"] == ""  # not to the agent
        # The agent may not read the code; nor the fleet agent.
        for uid in (AGENT_UID, FLEET_UID):
            refused = call_as(uid, sock, "GET_REQUESTS")
            assert refused["error"] == "io.mfpsecd.Auth.AuthenticationRequired"
        shown = as_panel(PANEL_UID, sock, "remote", "show", "--json")
        assert shown.returncode == 0, shown.stderr
        (req,) = json.loads(shown.stdout)["requests"]
        assert req["id"] == asked["id"] and len(req["code"]) == 4
        by_root = ds.mfpsec(sock, "remote", "show", "--json")
        assert json.loads(by_root.stdout)["requests"][0]["code"] == ""  # not even root

        wrong = "0000" if req["code"] != "0000" else "1111"
        assert call_as(AGENT_UID, sock, "PRESENT_CODE", request=req["id"], code=wrong) == {
            "error": "io.mfpsecd.Remote.CodeWrong",
            "tries_left": "2",
        }
        ok = call_as(AGENT_UID, sock, "PRESENT_CODE", request=req["id"], code=req["code"])
        assert ok["phase"] == "consent"
        # Consent is the panel's alone (a person at the device): not the agent's, not root's.
        assert "error" in call_as(AGENT_UID, sock, "APPROVE", request=req["id"])
        approved = call_as(PANEL_UID, sock, "APPROVE", request=req["id"])
        assert approved["phase"] == "active"
        ended = call_as(AGENT_UID, sock, "END_SESSION", request=req["id"], reason="viewer closed")
        assert ended["phase"] == "ended" and ended["end_reason"] == "viewer closed"

        # The fleet agent: monitor mode until root (or an administrator) opens a window.
        refused = call_as(FLEET_UID, sock, "CHECK_OPERATION", operation="firmware-update")
        assert refused["error"] == "io.mfpsecd.Remote.ManageRequired"
        refused = call_as(FLEET_UID, sock, "LIST_DEVICES", "usb")
        assert refused["error"] == "io.mfpsecd.Auth.AuthenticationRequired"
        assert "error" in call_as(FLEET_UID, sock, "SET_MANAGE_WINDOW", minutes=30)
        opened = ds.mfpsec(sock, "remote", "manage", "30")
        assert opened.returncode == 0 and "manage until" in opened.stdout, opened.stderr
        mode = call_as(FLEET_UID, sock, "CHECK_OPERATION", operation="firmware-update")
        assert mode["mode"] == "manage" and mode["until"]
        # ... and holds the settings privileges of the window itself (here: USB) while
        # it is open; outside it the same call was refused above and is again after.
        assert "devices" in call_as(FLEET_UID, sock, "LIST_DEVICES", "usb")
        assert ds.mfpsec(sock, "remote", "manage", "0").returncode == 0
        refused = call_as(FLEET_UID, sock, "LIST_DEVICES", "usb")
        assert refused["error"] == "io.mfpsecd.Auth.AuthenticationRequired"
        # the panel sees it all on its event stream (without details).
        stream = as_panel(PANEL_UID, sock, "events", "--after", "0", "--no-follow", "--json")
        assert stream.returncode == 0, stream.stderr
        seen = [
            (e["type"], e["alert"])
            for line in stream.stdout.splitlines()
            for e in json.loads(line)["events"]
        ]
        # request, the wrong code, the right one, connect, disconnect
        assert seen.count(("remote.session", "remote session")) == 5
        assert ("remote.mode", "fleet manage mode") in seen


def test_a_manage_window_outlives_a_restart_and_closes_on_time_after_one(
    short_tmp: Path,
) -> None:
    root = short_tmp / "d"
    with ds.running(root, tpm="none", config=CONFIG) as d:
        assert ds.mfpsec(d.socket_path, "remote", "manage", "30").returncode == 0
    with ds.running(root, tpm="none", config=CONFIG) as d:  # restarted within the window
        mode = call_as(FLEET_UID, d.socket_path, "GET_MODE")
        assert mode["mode"] == "manage" and mode["opened_by"] == "system"
    # The daemon is down while the window's end passes (its end moved into the past, as
    # 30 minutes of downtime would).
    with sqlite3.connect(root / "lib" / "state.sqlite3") as db:
        db.execute("UPDATE remote_manage SET until = until - 1801")
    with ds.running(root, tpm="none", config=CONFIG) as d:
        assert call_as(FLEET_UID, d.socket_path, "GET_MODE")["mode"] == "monitor"
        refused = call_as(FLEET_UID, d.socket_path, "CHECK_OPERATION", operation="settings-change")
        assert refused["error"] == "io.mfpsecd.Remote.ManageRequired"
        got = ds.mfpsec(d.socket_path, "audit", "show", "--type", "remote.mode", "--json")
        assert got.returncode == 0, got.stderr
        reasons = [e["details"].get("reason", "") for e in json.loads(got.stdout)]
        assert "expired while the daemon was down" in reasons
