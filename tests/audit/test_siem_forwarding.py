"""Acceptance 1 of the audit log: a real rsyslog (TLS, test CA) receives every record
exactly once, as CEF and as LEEF, across a daemon restart and a 30 s receiver outage, and
the received messages parse back to the original fields (escaping included)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from mfpsecd.audit import log_format as auditlog
from mfpsecd.audit.api import EXPORT_AUDIT, QUERY_AUDIT, AuditQueryParams
from mfpsecd.audit.events import EventType
from mfpsecd.client import Connection
from mfpsecd.keys import api as keys
from tests.support import daemon as ds
from tests.support import siem_parse
from tests.support.pki import make_pki
from tests.support.rsyslog import Rsyslog, requires_rsyslog

pytestmark = [requires_rsyslog, pytest.mark.slow]

NASTY_TARGET = "/no/such|dir=with\\back\nslash é"
OUTAGE_S = 30


def _work(d: ds.DaemonProcess, tag: str, n: int) -> None:
    k = Connection(d.socket_path)
    for i in range(n):
        k.call(keys.SET_SECRET, keys.SetSecretParams(f"{tag}-{i}", "credential", bytearray(b"v")))
    # A record whose object needs escaping in both formats (the backup fails: no such dir).
    ds.mfpsec(
        d.socket_path,
        "keys",
        "backup",
        "--to",
        NASTY_TARGET + tag,
        "--passphrase-file",
        "-",
        stdin="Siem-test-passphrase-1",
    )


def _received(r: Rsyslog) -> dict[str, Counter[int]]:
    seen: dict[str, Counter[int]] = {"cef": Counter(), "leef": Counter()}
    for line in r.lines():
        s = siem_parse.syslog(line.encode())
        seq = int(s["sd"].split('seq="')[1].split('"')[0])
        seen["cef" if s["msg"].startswith("CEF:") else "leef"][seq] += 1
    return seen


def _wait_all(r: Rsyslog, last: int, timeout: float = 60) -> dict[str, Counter[int]]:
    deadline = time.monotonic() + timeout
    while True:
        seen = _received(r)
        if all(set(range(1, last + 1)) <= set(c) for c in seen.values()):
            return seen
        if time.monotonic() > deadline:
            missing = {k: sorted(set(range(1, last + 1)) - set(c))[:10] for k, c in seen.items()}
            raise AssertionError(f"missing: {missing}")
        time.sleep(0.2)


def _acknowledged(d: ds.DaemonProcess, last: int, timeout: float = 30) -> None:
    """The daemon has the SIEM's acknowledgement of every record up to last (its cursors
    are saved): a stop now resends nothing. Stopping between the SIEM writing a batch and
    the acknowledgement reaching the daemon resends that batch, which the module's
    docstring allows (the sequence number in each message marks the repeat)."""
    deadline = time.monotonic() + timeout
    while True:
        out = ds.mfpsec(d.socket_path, "audit", "forward", "status", "--json").stdout
        # backlog: up to the daemon's newest record (the query's own audit.read included)
        if all(x["cursor"] >= last and x["backlog"] == 0 for x in json.loads(out)):
            return
        assert time.monotonic() < deadline, out
        time.sleep(0.1)


def _last_seq(d: ds.DaemonProcess) -> int:
    with Connection(d.socket_path) as conn:
        return max(e.seq for e in conn.call(QUERY_AUDIT, AuditQueryParams(limit=1)).entries)


@pytest.mark.sfr("FAU_STG_EXT.1", "FCS_CKM.2", "FTP_ITC.1")
@pytest.mark.spec("L-3", "L-5")
def test_every_record_arrives_exactly_once_as_cef_and_leef(short_tmp: Path) -> None:
    pki = make_pki(short_tmp / "pki")
    receiver = Rsyslog(short_tmp / "rsyslog", pki)
    receiver.start()
    forward = [
        {
            "name": "siem-cef",
            "host": "localhost",
            "port": receiver.port,
            "format": "cef",
            "ca_file": str(pki.ca),
        },
        {
            "name": "siem-leef",
            "host": "127.0.0.1",
            "port": receiver.port,
            "format": "leef",
            "ca_file": str(pki.ca),
        },
    ]
    root = short_tmp / "d"
    config = {"audit": {"forward": forward}}
    pids = []
    try:
        with ds.running(root, tpm="none", config=config) as d:
            pids.append(d.pid)
            _work(d, "a", 20)
            _wait_all(receiver, _last_seq(d))
            status = ds.mfpsec(d.socket_path, "audit", "forward", "status")
            assert status.stdout.count("connected") == 2, status.stdout

            receiver.stop()  # the SIEM goes away for 30 s; records keep coming
            _work(d, "b", 20)
            time.sleep(OUTAGE_S)
            down = ds.mfpsec(d.socket_path, "audit", "forward", "status", "--json")
            assert all(not x["connected"] and x["backlog"] > 0 for x in json.loads(down.stdout))
            receiver.start()
            last = _last_seq(d)
            _wait_all(receiver, last)
            _acknowledged(d, last)
        with ds.running(root, tpm="none", config=config) as d:  # a daemon restart
            pids.append(d.pid)
            _work(d, "c", 10)
            last = _last_seq(d)
            seen = _wait_all(receiver, last)
            with Connection(d.socket_path) as conn:
                export = [x for r in conn.call_more(EXPORT_AUDIT) for x in r.lines]
    finally:
        receiver.stop()

    for fmt, counts in seen.items():
        assert set(counts) == set(range(1, max(counts) + 1)), fmt  # no gap
        assert max(counts.values()) == 1, (fmt, [s for s, n in counts.items() if n > 1][:10])
    # Every field of every received message matches the original record.
    records = {
        auditlog.decode(line.encode()).seq: auditlog.decode(line.encode())
        for line in export
        if not line.startswith('{"checkpoint"')
    }
    starts = [r for r in records.values() if r.type is EventType.AUDIT_START]
    assert [r.details["pid"] for r in starts] == pids
    restart_seq = starts[1].seq
    nasty = 0
    for line in receiver.lines():
        s = siem_parse.syslog(line.encode())
        seq = int(s["sd"].split('seq="')[1].split('"')[0])
        if seq > max(records):
            continue  # the export's own audit.read/checkpoint records, forwarded after it
        r = records[seq]
        if s["msg"].startswith("CEF:"):
            header, fields = siem_parse.cef(s["msg"])
            assert header[3] == r.type.value and fields["act"] == r.type.value
            assert fields.get("cs1", "") == r.object
        else:
            header, fields = siem_parse.leef(s["msg"])
            assert header[3] == r.type.value and fields["cat"] == r.type.value
            # LEEF values have no escapes: a line break is shown as \u000a
            assert fields.get("cs1", "") == r.object.replace("\n", "\\u000a")
        # PROCID is the daemon that wrote the record, also when it is replayed later
        assert s["procid"] == str(pids[0] if seq < restart_seq else pids[1]), (seq, s)
        assert json.loads(fields["cs2"]) == r.details
        assert fields["outcome"] == r.outcome.value
        nasty += NASTY_TARGET in r.object
    assert nasty >= 6  # three escaping-heavy records, in both formats
