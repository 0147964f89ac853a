"""The footprint bench's probes: READY=1 heard as systemd hears it, memory read from /proc."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.footprint import probes
from bench.ipc.procs import BenchError

NOTIFY = (
    "import os, socket, time; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
    "time.sleep(0.2); s.sendto(b'STATUS=starting\\nREADY=1', os.environ['NOTIFY_SOCKET']); "
    "time.sleep(30)"
)


def test_ready_is_heard_and_the_process_is_read(tmp_path: Path) -> None:
    with probes.notify_socket() as (path, sock):
        proc = probes.popen(
            [sys.executable, "-c", NOTIFY], tmp_path / "log", {"NOTIFY_SOCKET": path}
        )
        try:
            probes.wait_ready(sock, proc, 20)
            m = probes.memory(proc.pid)
        finally:
            probes.stop(proc)
    assert 0 < m["anon"] <= m["rss"] <= m["hwm"] and 0 < m["pss"] <= m["rss"]
    assert m["libs"] >= 1  # libc at least


def test_a_process_that_exits_before_ready_is_reported(tmp_path: Path) -> None:
    with probes.notify_socket() as (_, sock):
        proc = probes.popen([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "log")
        with pytest.raises(BenchError, match="exited"):
            probes.wait_ready(sock, proc, 20)
