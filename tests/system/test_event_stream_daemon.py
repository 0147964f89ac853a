"""The S-2 event stream from the real daemon (issue 25): a client that loses its
connection resumes with the last sequence number it was given and gets exactly what it
missed; a client that stops reading while thousands of records are written slows nobody
(another connection's status call answers meanwhile) and later reads every one of them
in order, told how far behind it was; the panel's uid sees only the alerts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.client import Connection
from mfpsecd.keys import api as keys
from mfpsecd.system import api as system
from tests.support import daemon as ds
from tests.support.auth_cli import SOCKET_GID, as_panel
from tests.support.netlab import Lab, dut_board

pytestmark = pytest.mark.root

PANEL_UID = 64032
CONFIG: dict[str, dict[str, Any]] = {
    "ipc": {"socket_group": SOCKET_GID},
    "access": {"panel_users": [PANEL_UID]},
}


def _secret(conn: Connection, i: int) -> None:
    conn.call(keys.SET_SECRET, keys.SetSecretParams(f"s{i}", "other", bytearray(b"x")))


def test_resume_after_reconnect_and_a_lagging_client(short_tmp: Path, netlab: Lab) -> None:
    short_tmp.chmod(0o711)
    with (
        ds.running(short_tmp / "d", config=CONFIG, tpm="none", board=dut_board(netlab)) as d,
        Connection(d.socket_path) as writer,
    ):
        # A client subscribes from now on, reads a few events, loses its connection.
        with Connection(d.socket_path) as first:
            stream = first.call_more(system.WATCH_EVENTS, system.WatchEventsParams(-1, 5))
            start = next(stream)
            assert start.keepalive and start.events == []
            for i in range(3):
                _secret(writer, i)
            seen: list[int] = []
            while len(seen) < 3:
                seen += [e.seq for e in next(stream).events if e.type == "secret.set"]
            resume_at = seen[-1]
        for i in range(3, 10):  # written while it is away
            _secret(writer, i)
        with Connection(d.socket_path) as again:
            stream = again.call_more(system.WATCH_EVENTS, system.WatchEventsParams(resume_at, 5))
            assert next(stream).last_seq == resume_at
            got: list[Any] = []
            while len([e for e in got if e.type == "secret.set"]) < 7:
                got += next(stream).events
        assert [e.object for e in got if e.type == "secret.set"] == [f"s{i}" for i in range(3, 10)]
        assert [e.seq for e in got] == list(range(resume_at + 1, resume_at + 1 + len(got)))
        assert all(e.details for e in got)  # root may read the log: every record, in full

        # A lagging client: subscribed, then not reading while 2000 records are written.
        with Connection(d.socket_path) as slow:
            stream = slow.call_more(system.WATCH_EVENTS, system.WatchEventsParams(-1, 30))
            base = next(stream).last_seq
            with Connection(d.socket_path, timeout=5) as other:
                worst = 0.0
                for i in range(2000):
                    _secret(writer, 100 + i)
                    if i % 200 == 0:
                        t = time.monotonic()
                        other.call(system.GET_STATUS)
                        worst = max(worst, time.monotonic() - t)
                assert worst < 5  # never stuck behind the stalled stream
            seqs: list[int] = []
            behind: list[int] = []
            # Others (the daemon's own records) may be written meanwhile: read until the
            # stream says nothing is left behind.
            while not seqs or seqs[-1] < base + 2000 or behind[-1] > 0:
                batch = next(stream)
                seqs += [e.seq for e in batch.events]
                behind.append(batch.behind)
        assert seqs[:2000] == list(range(base + 1, base + 2001))  # all of them, in order
        assert max(behind) > 0 and behind[-1] == 0

        # The panel: no login, only what an alert rule matches, without details.
        with Connection(d.socket_path) as admin:
            admin.call(system.GET_POSTURE)  # the posture's history starts
        ds.mfpsec(d.socket_path, "net", "deny", "203.0.113.0/24").check_returncode()
        ds.mfpsec(d.socket_path, "posture").check_returncode()
        ds.mfpsec(d.socket_path, "net", "remove", "203.0.113.0/24").check_returncode()
        ds.mfpsec(d.socket_path, "posture").check_returncode()  # the filter off: an alert
        panel = as_panel(
            PANEL_UID, d.socket_path, "events", "--after", "0", "--no-follow", "--json"
        )
        assert panel.returncode == 0, panel.stderr
        events = [e for line in panel.stdout.splitlines() for e in json.loads(line)["events"]]
        assert events, panel.stdout
        assert all(e["alert"] and not e["details"] and not e["user"] for e in events)
        alerts = {(e["type"], e["alert"]) for e in events}
        assert ("netfilter.change", "ip filter changed") in alerts
        assert ("posture.change", "security posture") in alerts
        assert not any(e["type"] == "secret.set" for e in events)
