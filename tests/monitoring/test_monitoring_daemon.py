"""Monitoring settings by API (issue 29, item 5), end to end: the administrator adds a
SIEM destination and the SNMP subagent with `mfpsec monitoring set` and both start
working without a restart (a real rsyslog receives the audit records, a real snmpd serves
the MIB); a document with any part wrong is refused as a whole and changes nothing; every
attempt is audited with what changed; the settings survive a restart; a user without the
privilege can neither read nor change them; a reset brings the file's back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CONFIG, MALLORY_UID, Cli
from tests.support.pki import make_pki
from tests.support.rsyslog import Rsyslog
from tests.support.snmp_agents import Snmpd

pytestmark = pytest.mark.root
BOB_TEMP = "Temporary-pass-2026"
BOB_OWN = "Her-own-pass-2026!"


def _write(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document))
    path.chmod(0o644)
    return str(path)


def _wait(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.sfr("FMT_MOF.1")
@pytest.mark.spec("A-10", "F-3", "N-1")
def test_the_administrator_changes_where_the_device_reports_without_a_restart(
    short_tmp: Path,
) -> None:
    short_tmp.chmod(0o711)
    pki = make_pki(short_tmp / "pki")
    receiver = Rsyslog(short_tmp / "rsyslog", pki)
    receiver.start()
    snmpd = Snmpd(short_tmp / "snmpd")
    root = short_tmp / "d"
    soc: dict[str, Any] = {
        "name": "soc",
        "host": "localhost",
        "port": receiver.port,
        "ca_file": str(pki.ca),
    }
    good: dict[str, Any] = {"forward": [soc], "snmp": {"agentx_socket": str(snmpd.agentx)}}
    try:
        with ds.running(root, config=CONFIG, tpm="none") as d:
            cli = Cli(d.socket_path, short_tmp / "rt")
            cli.runtime.mkdir(exist_ok=True)
            cli.ok(0, "users", "init", "alice", "--password-file", "-", stdin=ADMIN_PW)
            cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
            before = json.loads(cli.ok(ALICE_UID, "monitoring", "show", "--json"))
            assert (before["source"], before["document"]["forward"]) == ("configuration", [])
            assert len(before["default_rules"]) == 21

            # A user whose role lacks the privilege can neither read nor change them.
            cli.ok(
                ALICE_UID,
                "users",
                "add",
                "bob",
                "--role",
                "user",
                "--password-file",
                "-",
                stdin=BOB_TEMP,
            )
            cli(MALLORY_UID, "login", "-u", "bob", "--password-file", "-", stdin=BOB_TEMP)
            cli.ok(MALLORY_UID, "passwd", "--password-file", "-", stdin=f"{BOB_TEMP}\n{BOB_OWN}")
            assert "PermissionDenied" in cli.fails(MALLORY_UID, "monitoring", "show")
            doc = _write(short_tmp / "good.json", good)
            assert "PermissionDenied" in cli.fails(MALLORY_UID, "monitoring", "set", doc)

            shown = json.loads(cli.ok(ALICE_UID, "monitoring", "set", doc, "--json"))
            assert (shown["source"], shown["set_by"]) == ("administrator", "alice")
            # Live: the SIEM gets the records, snmpd serves the MIB, no restart.
            _wait(receiver.lines, "no record reached the new SIEM")
            walk = snmpd.wait_registered()
            assert walk["mfpsecDaemonState.0"] in {"ready", "degraded"}

            # Refused as a whole, nothing changed: a port out of range, a TLS destination
            # without its CA, a secret that is not stored.
            bad_port = {**good, "forward": [{**soc, "port": 70000}]}
            no_ca = {**good, "forward": [soc, {"name": "b", "host": "x"}]}
            no_secret = {
                **good,
                "notify": {
                    "snmp": {
                        "host": "127.0.0.1",
                        "user": "u",
                        "engine_id": "80001f8880c0ffee01",
                        "auth_secret": "snmp-auth",
                        "priv_secret": "snmp-priv",
                    }
                },
            }
            for name, document, why in (
                ("port", bad_port, "forward[0].port"),
                ("ca", no_ca, "ca_file"),
                ("secret", no_secret, "not stored: snmp-auth, snmp-priv"),
            ):
                err = cli.fails(
                    ALICE_UID, "monitoring", "set", _write(short_tmp / f"{name}.json", document)
                )
                assert "ConfigInvalid" in err and why in err, (name, err)
            after = json.loads(cli.ok(ALICE_UID, "monitoring", "show", "--json"))
            assert after["document"] == shown["document"]
            status = json.loads(ds.mfpsec(d.socket_path, "status", "--json").stdout)
            names = {c["name"] for c in status["components"]}
            assert {"forward:soc", "snmp-agentx"} <= names and "forward:b" not in names

            # Each attempt is audited: the change with what changed, the refusals failed.
            records = [
                r
                for r in json.loads(cli.ok(ALICE_UID, "audit", "show", "--json"))
                if r["type"] == "management" and r["object"] == "monitoring settings"
            ]
            assert [r["outcome"] for r in records] == ["success", "failure", "failure", "failure"]
            assert "forward" in records[0]["details"]["changed"]
            assert "snmp.agentx_socket" in records[0]["details"]["changed"]
            assert records[0]["details"]["new.snmp.agentx_socket"] == str(snmpd.agentx)
            seen = len(receiver.lines())

        with ds.running(root, config=CONFIG, tpm="none") as d:  # kept across a restart
            cli = Cli(d.socket_path, short_tmp / "rt")
            cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
            kept = json.loads(cli.ok(ALICE_UID, "monitoring", "show", "--json"))
            assert kept["source"] == "administrator"
            _wait(lambda: len(receiver.lines()) > seen, "forwarding did not resume")
            snmpd.wait_registered()

            out = cli.ok(ALICE_UID, "monitoring", "reset")
            assert "from the configuration file" in out and "SIEM: none" in out
            _wait(
                lambda: (
                    "forward:soc"
                    not in {
                        c["name"]
                        for c in json.loads(ds.mfpsec(d.socket_path, "status", "--json").stdout)[
                            "components"
                        ]
                    }
                ),
                "the removed destination is still there",
            )
    finally:
        receiver.stop()
        snmpd.stop()
