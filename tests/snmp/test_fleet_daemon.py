"""Fleet monitoring end to end (issue 29): the daemon on a simulated board serves the
MFPSEC-MIB through a real net-snmp snmpd (AgentX master on a Unix socket), read with
snmpwalk over SNMPv3 authPriv (HMAC-SHA-256, AES) and loaded by name from the MIB file;
its alerts arrive at a real snmptrapd as MFPSEC-MIB informs (SHA-512, AES) decoded by
name. The posture and the components agree with what `mfpsec posture/status --json`
say; the counters follow failed logins; the subtree is read-only; snmpd restarting is
survived and snmpd stalling does not stall the daemon."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, MALLORY_UID, Cli
from tests.support.auth_cli import CONFIG as AUTH_CONFIG
from tests.support.snmp_agents import SUBTREE, Snmpd, Snmptrapd, counter

pytestmark = pytest.mark.root
T = TypeVar("T")

POSTURE_LABEL = {
    "on": "on",
    "off": "off",
    "not_applicable": "notApplicable",
    "not_managed": "notManaged",
}


def _rows(walk: dict[str, str], column: str) -> dict[str, str]:
    """A table column by index: mfpsecPostureState.3 -> {"3": "on"}."""
    prefix = column + "."
    return {k[len(prefix) :]: v for k, v in walk.items() if k.startswith(prefix)}


def _until(check: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    assert got is not None
    return got


def test_fleet_tools_read_the_mib_through_snmpd_and_get_alerts_as_informs(
    short_tmp: Path,
) -> None:
    short_tmp.chmod(0o711)
    trapd = Snmptrapd(short_tmp / "trapd")
    snmpd = Snmpd(short_tmp / "snmpd", trapd)
    config = {
        **AUTH_CONFIG,
        "snmp": {"agentx_socket": str(snmpd.agentx)},
    }
    try:
        with ds.running(short_tmp / "d", config=config, tpm="none") as d:
            walk = snmpd.wait_registered()
            status = json.loads(ds.mfpsec(d.socket_path, "status", "--json").stdout)
            posture = json.loads(ds.mfpsec(d.socket_path, "posture", "--json").stdout)

            assert walk["mfpsecDaemonVersion.0"] == status["version"]
            assert walk["mfpsecBoardName.0"] == status["board"]
            assert walk["mfpsecBootCount.0"] == str(status["boot_count"])
            assert walk["mfpsecKeyChainState.0"] == "ready"
            assert walk["mfpsecKeyChainTpmBound.0"] == "false"  # tpm="none": software keys
            # Every posture item, in the panel's order, with the state and setting the
            # panel sees.
            names = _rows(walk, "mfpsecPostureName")
            states = _rows(walk, "mfpsecPostureState")
            settings = _rows(walk, "mfpsecPostureSetting")
            assert list(names.values()) == [i["id"] for i in posture["items"]]
            for n, item in zip(names, posture["items"], strict=True):
                assert states[n] == POSTURE_LABEL[item["state"]], item
                assert settings[n] == item["setting"], item
            assert states["1"] == "off"  # no administrator password yet
            # Every component mfpsec status shows, by name, the subagent's own included.
            components = _rows(walk, "mfpsecComponentState")
            assert {f'"{c["name"]}"' for c in status["components"]} <= set(components)
            assert components['"snmp-agentx"'] == "ok"
            assert components['"audit"'] == status_state(status, "audit")

            # Counters follow the audit records: three wrong passwords lock bob out.
            cli = Cli(d.socket_path, short_tmp / "rt")
            cli.runtime.mkdir(exist_ok=True)
            cli.ok(0, "users", "init", "alice", "--password-file", "-", stdin=ADMIN_PW)
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
                stdin="Temporary-pass-2026",
            )
            before = snmpd.walk()
            for i in range(3):
                cli.fails(
                    MALLORY_UID, "login", "-u", "bob", "--password-file", "-", stdin=f"wrong-{i}"
                )

            def locked_out() -> dict[str, str] | None:
                w = snmpd.walk()
                return w if w["mfpsecLockouts.0"] != before["mfpsecLockouts.0"] else None

            after = _until(locked_out)
            assert (
                counter(after, "mfpsecLoginsFailed.0") - counter(before, "mfpsecLoginsFailed.0")
                == 3
            )
            assert counter(after, "mfpsecLockouts.0") - counter(before, "mfpsecLockouts.0") == 1
            assert counter(after, "mfpsecLoginsSucceeded.0") >= 1
            assert counter(after, "mfpsecAuditRecords.0") > counter(before, "mfpsecAuditRecords.0")
            assert _rows(after, "mfpsecPostureState")["1"] == "on"  # the password is set now

            # The alert reaches the trap receiver as the rule's own notification.
            text = trapd.wait_for("MFPSEC-MIB::mfpsecAccountLocked")
            assert "mfpsecAlertRule.0 = STRING: account locked" in text
            assert "mfpsecAlertObject.0 = STRING: bob" in text
            assert "mfpsecAlertEventType.0 = STRING: auth.lockout" in text

            # Read-only: a SET is refused by the master for our subtree.
            r = snmpd.tool("snmpset", f"{SUBTREE}.1.1.7.0", "s", "evil")
            assert r.returncode != 0 and "evil" not in snmpd.walk()["mfpsecBoardName.0"]

            # snmpd stalls: the daemon keeps answering its own clients.
            assert snmpd.proc is not None
            os.kill(snmpd.proc.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                r = ds.mfpsec(d.socket_path, "status", "--json", timeout=10)
                assert r.returncode == 0 and time.monotonic() - started < 5
            finally:
                os.kill(snmpd.proc.pid, signal.SIGCONT)

            # snmpd restarts: the subagent opens a new session and serves again.
            snmpd.stop()
            _until(lambda: component(d, "snmp-agentx") == "backoff")
            snmpd.start()
            again = snmpd.wait_registered(timeout=60)
            assert again["mfpsecBoardName.0"] == status["board"]
            _until(lambda: component(d, "snmp-agentx") == "ok")
    finally:
        snmpd.stop()
        trapd.stop()


def status_state(status: dict[str, Any], name: str) -> str:
    return str(next(c["state"] for c in status["components"] if c["name"] == name))


def component(d: ds.DaemonProcess, name: str) -> str:
    return status_state(json.loads(ds.mfpsec(d.socket_path, "status", "--json").stdout), name)
