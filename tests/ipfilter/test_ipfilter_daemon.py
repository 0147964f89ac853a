"""The IP filter through the daemon and `mfpsec net`, on a board whose interfaces live in
a throwaway network namespace: changes take effect on real traffic, bad input is refused
with nothing applied, and the rules are fail-closed: they stay enforced when the daemon
is SIGKILLed, the boot unit's `mfpsecd net-restore` puts them back into an empty kernel,
and a restarted daemon reconciles a table someone removed (N-1..N-4)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mfpsecd.auth import api as auth
from mfpsecd.base.errors import EX_DATAERR, MfpsecError
from mfpsecd.client import Connection
from tests.support import daemon as ds
from tests.support.netlab import Lab, Probe, dut_board, requires_netns

pytestmark = requires_netns

REFUSED, PERMITTED = Probe("10.7.3.50", "tcp", 80), Probe("10.7.2.50", "tcp", 80)


def _net(d: ds.DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return ds.mfpsec(d.socket_path, "net", *args)


@pytest.mark.sfr("FMT_MTD.1", "FMT_SMF.1")
@pytest.mark.spec("A-10", "A-2", "F-3", "K-3", "L-3", "N-2", "U-4")
def test_rules_through_the_cli_survive_the_daemon_and_come_back(
    short_tmp: Path, netlab: Lab
) -> None:
    root = short_tmp / "d"
    board = dut_board(netlab)
    with ds.running(root, tpm="none", board=board) as d:
        shown = json.loads(_net(d, "show", "--json").stdout)
        assert shown["in_kernel"] and "10.7.1.1/16" in shown["addresses"]
        assert {s["name"] for s in shown["services"] if s["on"]} >= {"http", "https", "ipp"}
        assert netlab.probe([REFUSED, PERMITTED]) == [True, True]

        r = _net(d, "deny", "10.7.3.0/24")
        assert r.returncode == 0 and "refused:   10.7.3.0/24" in r.stdout, r.stderr
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
        assert "off ipp" in _net(d, "port", "ipp", "off").stdout
        changes = json.loads(
            ds.mfpsec(
                d.socket_path,
                "audit",
                "show",
                "--json",
                "--limit",
                "0",
                "--type",
                "netfilter.change",
            ).stdout
        )
        (port,) = [e["details"] for e in changes if e["details"].get("changed")]
        assert port["changed"] == "network.enabled"  # FMT_MTD.1: what, from, to
        assert "ipp" in port["old.network.enabled"] and "ipp" not in port["new.network.enabled"]
        assert netlab.probe([Probe("10.7.2.50", "tcp", 631)]) == [False]

        bad = _net(d, "deny", "10.7.0.1/8")
        assert bad.returncode == EX_DATAERR and "RulesInvalid" in bad.stderr
        assert "has host bits set" in bad.stderr
        assert json.loads(_net(d, "show", "--json").stdout)["refused"] == ["10.7.3.0/24"]
        # A range inside another is shown as entered (and the merged set apart), so it
        # can be removed by what is shown, and does not come back with the outer one.
        assert _net(d, "deny", "10.7.3.128/25").returncode == 0
        shown = json.loads(_net(d, "show", "--json").stdout)
        assert shown["refused"] == ["10.7.3.0/24", "10.7.3.128/25"]
        assert shown["effective_refused"] == ["10.7.3.0/24"]
        text = _net(d, "show").stdout
        assert "refused:   10.7.3.0/24, 10.7.3.128/25" in text
        assert "in effect (refused, merged): 10.7.3.0/24" in text
        assert _net(d, "remove", "10.7.3.128/25").returncode == 0
        shown = json.loads(_net(d, "show", "--json").stdout)
        assert shown["refused"] == shown["effective_refused"] == ["10.7.3.0/24"]
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
        dry = json.loads(_net(d, "apply", "--dry-run").stdout)
        assert {"add": {"table": {"family": "inet", "name": "mfpsecd"}}} in dry["nftables"]

        d.stop(signal.SIGKILL)  # a crash: the kernel keeps enforcing the rules
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]

    # Someone removes the table: everything would get through...
    netlab.in_dut("nft", "delete", "table", "inet", "mfpsecd")
    assert netlab.probe([REFUSED]) == [True]
    # ... the boot unit's command puts the last applied rules back,
    config = root / "mfpsecd.toml"
    r = subprocess.run(
        [
            *ds.MFPSECD,
            "net-restore",
            "--config",
            str(config),
            "--board",
            str(root / "testboard.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ds.ROOT,
    )
    assert r.returncode == 0 and "the last applied rules" in r.stdout, r.stderr
    assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
    # ... again and again (a restart of the unit): the same rules, no "File exists".
    for _ in range(2):
        again = subprocess.run(
            r.args, capture_output=True, text=True, timeout=60, check=False, cwd=ds.ROOT
        )
        assert again.returncode == 0 and "the last applied rules" in again.stdout, again.stderr
        assert "fallback" not in again.stdout + again.stderr
    assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
    # ... and a daemon starting on a kernel without them reconciles from its store.
    netlab.in_dut("nft", "delete", "table", "inet", "mfpsecd")
    with ds.running(root, tpm="none", board=board) as d:
        assert json.loads(_net(d, "show", "--json").stdout)["refused"] == ["10.7.3.0/24"]
        assert netlab.probe([REFUSED, PERMITTED, Probe("10.7.2.50", "tcp", 631)]) == [
            False,
            True,
            False,
        ]


@pytest.mark.sfr("FMT_MSA.3")
@pytest.mark.spec("A-10", "A-3")
def test_without_saved_rules_the_boot_unit_admits_nothing(short_tmp: Path, netlab: Lab) -> None:
    root = short_tmp / "d"
    root.mkdir()
    board_path = ds.write_board(root, tpm="none", **dut_board(netlab))
    config = root / "mfpsecd.toml"
    config.write_text(ds.toml_doc({"daemon": {"board_dir": str(root)}}))
    r = subprocess.run(
        [*ds.MFPSECD, "net-restore", "--config", str(config), "--board", str(board_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ds.ROOT,
    )
    assert r.returncode == 0 and "the restrictive rules" in r.stdout, r.stderr
    assert netlab.probe([REFUSED, PERMITTED, Probe("10.7.1.50", "udp", 161)]) == [
        False,
        False,
        False,
    ]
    again = subprocess.run(
        r.args, capture_output=True, text=True, timeout=60, check=False, cwd=ds.ROOT
    )
    assert again.returncode == 0 and "the restrictive rules" in again.stdout, again.stderr
    netlab.in_dut("nft", "delete", "table", "inet", "mfpsecd")


def test_the_boot_unit_loads_the_rules_before_the_network() -> None:
    unit = (ds.ROOT / "systemd" / "mfpsecd-netfilter.service").read_text()
    for line in (
        "DefaultDependencies=no",
        "Before=network-pre.target",
        "Wants=network-pre.target",
        "ExecStart=/usr/bin/mfpsecd net-restore",
        "CapabilityBoundingSet=CAP_NET_ADMIN",
    ):
        assert line in unit


def _netfilter_component(d: ds.DaemonProcess) -> dict[str, str]:
    status = json.loads(ds.mfpsec(d.socket_path, "status", "--json").stdout)
    component: dict[str, str] = {c["name"]: c for c in status["components"]}["netfilter"]
    return component


def test_rules_changed_behind_the_daemons_back_are_reported_and_put_back(
    short_tmp: Path, netlab: Lab
) -> None:
    """Drift: someone inserts an accept rule into the daemon's table. The next check
    (every network.refused_summary_s) audits it as a failure, says so in status, and
    applies the policy again; traffic and counters alone never count as a change."""
    root = short_tmp / "d"
    with ds.running(
        root, tpm="none", board=dut_board(netlab), config={"network": {"refused_summary_s": 1}}
    ) as d:
        assert _net(d, "deny", "10.7.3.0/24").returncode == 0
        for _ in range(3):  # traffic moves counters and the refused-source sets
            assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
        time.sleep(2.5)
        assert "drift" not in d.log()
        netlab.in_dut("nft", "insert", "rule", "inet", "mfpsecd", "input", "accept")
        # No probe of the hole itself: with a 1 s check the daemon may close it first.
        # Status turns degraded once the policy has been applied again.
        deadline = time.monotonic() + 30
        while (component := _netfilter_component(d))[
            "state"
        ] == "ok" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert component["state"] == "degraded"
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]  # put back
        assert "differ from the last applied behind the daemon's back" in component["detail"]
        assert d.log().count('"netfilter_drift"') == 1
        audit = ds.mfpsec(d.socket_path, "audit", "show", "--json")
        assert '"step": "drift"' in audit.stdout or '"step":"drift"' in audit.stdout, (
            audit.stdout[-2000:] + audit.stderr
        )


def test_a_change_behind_the_daemons_back_is_noticed_when_it_happens(
    short_tmp: Path, netlab: Lab
) -> None:
    """Drift is also looked for when the kernel announces a change to the table (the
    nftables notifications `nft monitor` reads), not only at each interval: with an
    interval of an hour, an element removed by hand is put back within seconds, while
    the daemon's own edits raise nothing."""
    with ds.running(
        short_tmp / "d",
        tpm="none",
        board=dut_board(netlab),
        config={"network": {"refused_summary_s": 3600}},
    ) as d:
        for text in ("10.7.3.0/24", "10.7.9.9", "2001:db8:7:9::/64"):
            assert _net(d, "deny", text).returncode == 0
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
        time.sleep(3)
        assert "netfilter_drift" not in d.log()  # its own changes are not drift
        netlab.in_dut("nft", "delete", "element", "inet", "mfpsecd", "deny4", "{ 10.7.3.0/24 }")
        deadline = time.monotonic() + 20
        while (component := _netfilter_component(d))[
            "state"
        ] == "ok" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert component["state"] == "degraded", component
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]  # put back
        assert d.log().count('"netfilter_drift"') == 1


def test_a_blocklist_file_through_the_cli(short_tmp: Path, netlab: Lab) -> None:
    """`mfpsec net import`: 3,000 ranges in one call, a bad file refused whole with the
    line named, `net show` listing every range page by page, a replace from stdin."""
    with ds.running(short_tmp / "d", tpm="none", board=dut_board(netlab)) as d:
        blocklist = short_tmp / "blocklist.txt"
        lines = [f"10.{100 + i // 250}.{i % 250}.0/24" for i in range(2999)]
        blocklist.write_text("# from the SOC\n" + "\n".join(lines) + "\n10.7.3.50\n")
        r = _net(d, "import", str(blocklist), "--refused")
        assert r.returncode == 0, r.stderr
        assert "refused: 3000 range(s) in the file, 3000 added" in r.stdout
        assert "the list holds 3000" in r.stdout
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
        shown = json.loads(_net(d, "show", "--json").stdout)
        assert shown["refused_total"] == len(shown["refused"]) == 3000
        assert shown["refused"][-1] == "10.7.3.50"

        broken = short_tmp / "broken.txt"
        broken.write_text("10.7.2.0/24\n10.7.2.0/33\n")
        r = _net(d, "import", str(broken), "--refused")
        assert r.returncode == EX_DATAERR and "line 2: " in r.stderr, r.stderr
        assert netlab.probe([PERMITTED]) == [True]  # nothing of it was imported

        r = ds.mfpsec(
            d.socket_path, "net", "import", "-", "--refused", "--replace", stdin="10.7.4.0/24\n"
        )
        assert r.returncode == 0 and "1 added" in r.stdout and "3000 removed" in r.stdout
        assert netlab.probe([REFUSED, PERMITTED]) == [True, True]
        audit = ds.mfpsec(d.socket_path, "audit", "show", "--type", "netfilter.change", "--json")
        imports = [
            (e["outcome"], e["details"].get("added"), e["details"].get("removed"))
            for e in json.loads(audit.stdout)
            if e["details"].get("change") == "import refused"
        ]
        assert imports == [
            ("success", "3000", "0"),
            ("failure", None, None),
            ("success", "1", "3000"),
        ]


def test_a_password_attack_from_the_network_is_banned_at_the_filter(
    short_tmp: Path, netlab: Lab
) -> None:
    """Through the daemon: ten wrong passwords that a front-end reports from 10.7.3.50
    trip the detector, the filter refuses that source (`net show` lists the ban), and
    `net unban` lifts it."""
    config = {"auth": {"argon2_memory_kib": 8192, "argon2_iterations": 1}}
    with ds.running(short_tmp / "d", tpm="none", board=dut_board(netlab), config=config) as d:
        assert netlab.probe([REFUSED, PERMITTED]) == [True, True]
        with Connection(d.socket_path) as conn:
            for _ in range(10):
                with pytest.raises(MfpsecError):
                    wrong = bytearray(b"Wrong-password-1")
                    conn.call(auth.LOGIN, auth.LoginParams("nobody", wrong, "", "10.7.3.50"))
        deadline = time.monotonic() + 20
        while not json.loads(_net(d, "show", "--json").stdout)["banned"]:
            assert time.monotonic() < deadline, d.log()[-3000:]
            time.sleep(0.2)
        shown = json.loads(_net(d, "show", "--json").stdout)["banned"]
        assert [b["range"] for b in shown] == ["10.7.3.50"] and shown[0]["left_s"] > 500
        assert "banned:    10.7.3.50 (10 min left)" in _net(d, "show").stdout
        assert netlab.probe([REFUSED, PERMITTED]) == [False, True]
        r = _net(d, "unban", "10.7.3.50")
        assert r.returncode == 0 and "banned:    none" in r.stdout, r.stderr
        assert netlab.probe([REFUSED, PERMITTED]) == [True, True]
