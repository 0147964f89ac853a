"""V-1..V-3 through the daemon: `mfpsec store put` with a real clamd configured; a virus
is refused with its signature and what the job gets, status and the posture show the
scan, and a clamd that goes away turns the posture item off and refuses data."""

from __future__ import annotations

import json
from pathlib import Path

from mfpsecd.client import Connection
from mfpsecd.system import api as system
from tests.support import daemon as ds
from tests.support.clamd import EICAR, EICAR_NAME, clamd, requires_clamd

pytestmark = requires_clamd


def _item(sock: str) -> system.PostureItem:
    with Connection(sock) as conn:
        (item,) = [i for i in conn.call(system.GET_POSTURE).items if i.id == "virus-scan"]
    return item


def test_the_daemon_scans_what_it_stores(short_tmp: Path) -> None:
    clean, infected = short_tmp / "page.pdf", short_tmp / "eicar.com"
    clean.write_bytes(b"%PDF-1.7 a clean page\n" * 1000)
    infected.write_bytes(EICAR)
    with (
        clamd(short_tmp / "av") as av,
        ds.running(
            short_tmp / "d",
            tpm="none",
            config={"scan": {"clamd_socket": av.socket, "rx_option": "continue"}},
        ) as d,
    ):
        status = ds.mfpsec(d.socket_path, "status")
        assert "virus-scan" in status.stdout and "local signature databases only" in status.stdout
        item = _item(d.socket_path)
        assert item.state.value == "on" and "RX jobs with a virus: continue" in item.setting

        put = ds.mfpsec(
            d.socket_path, "store", "put", str(clean), "--job", "j1", "--owner", "alice", "--json"
        )
        assert put.returncode == 0, put.stderr
        assert json.loads(put.stdout)["scan"] == "clean"
        refused = ds.mfpsec(
            d.socket_path,
            "store",
            "put",
            str(infected),
            "--job",
            "j2",
            "--owner",
            "alice",
            "--source",
            "scan-to-send",
        )
        assert refused.returncode == 65
        assert "io.mfpsecd.Store.VirusFound" in refused.stderr
        assert f"signature={EICAR_NAME}" in refused.stderr and "job_action=delete" in refused.stderr
        listed = ds.mfpsec(d.socket_path, "store", "list", "--json")
        assert [o["job"] for o in json.loads(listed.stdout)] == ["j1"]

        av.stop()  # clamd goes away: fail closed (the default)
        refused = ds.mfpsec(
            d.socket_path, "store", "put", str(clean), "--job", "j3", "--owner", "alice"
        )
        assert refused.returncode == 75 and "io.mfpsecd.Store.ScanFailed" in refused.stderr
