"""Acceptance 3 of the audit log: the daemon is SIGKILLed at random moments (50 times)
while 8 clients run audited operations. Every operation the daemon acknowledged has its
record, the chain verifies across all the restarts, and torn tails are cut and recorded."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from mfpsecd.audit import frames
from mfpsecd.audit import log_format as auditlog
from mfpsecd.audit.events import EventType
from mfpsecd.base.errors import MfpsecError
from mfpsecd.client import Connection
from mfpsecd.keys import api as keys
from tests.support import daemon as ds

pytestmark = pytest.mark.slow

KILLS = 50
CLIENTS = 8
TEARS = {7, 19, 33, 41}  # after these kills, a half-written frame is left at the end


def _client(sock: str, index: int, acked: set[str], stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        name = f"c{index}-{n}"
        try:
            with Connection(sock, timeout=5) as conn:
                conn.call(
                    keys.SET_SECRET, keys.SetSecretParams(name, "credential", bytearray(b"v"))
                )
        except (MfpsecError, OSError):
            time.sleep(0.02)  # the daemon is down or restarting: try again
            continue
        acked.add(name)  # the daemon said yes: its record must be durable
        n += 1


@pytest.mark.sfr("FAU_STG.4")
@pytest.mark.spec("L-5")
def test_acknowledged_records_survive_50_kills(short_tmp: Path) -> None:
    root = short_tmp / "d"
    rng = random.Random(20261122)
    acked: set[str] = set()
    stop = threading.Event()
    d = ds.start(root, tpm="none")
    clients = [
        threading.Thread(target=_client, args=(d.socket_path, i, acked, stop))
        for i in range(CLIENTS)
    ]
    for t in clients:
        t.start()
    log_dir = root / "lib" / "audit"
    try:
        for kill in range(1, KILLS + 1):
            time.sleep(rng.uniform(0.05, 0.4))
            d.stop(signal.SIGKILL)
            d.close_notify()
            if kill in TEARS:
                last = sorted(log_dir.glob("audit-*.log"))[-1]
                with last.open("ab") as f:  # what a power cut in mid-write leaves
                    f.write(frames.frame(b'{"seq":999999,"prev":"x"}')[: rng.randint(1, 20)])
            d = ds.start(root, tpm="none")
    finally:
        stop.set()
        for t in clients:
            t.join(30)
        d.stop()
        d.close_notify()

    data = b"".join(p.read_bytes() for p in sorted(log_dir.glob("audit-*.log")))
    records, _, unreadable = frames.records_of_file(data)
    assert not unreadable
    verdict = auditlog.verify(records)
    assert verdict.ok, verdict
    decoded = [auditlog.decode(r) for r in records]
    written = {
        r.object for r in decoded if r.type is EventType.SECRET_SET and r.outcome.value == "success"
    }
    assert len(acked) > KILLS  # the clients did get work done between the kills
    assert acked <= written, sorted(acked - written)[:10]
    starts = [r for r in decoded if r.type is EventType.AUDIT_START]
    assert len(starts) == KILLS + 1
    repairs = [r for r in decoded if r.type is EventType.AUDIT_TAIL_REPAIRED]
    assert len(repairs) >= len(TEARS)
    assert all(int(r.details["bytes_cut"]) > 0 for r in repairs)
