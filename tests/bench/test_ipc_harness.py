"""The ipc bench's own parts: the daemon it starts and the halt-polling window it sets.

The bench runs outside the suite; these keep it from rotting when the daemon's
configuration grows (a new mandatory key once left `python -m bench ipc` unable to start).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec
import pytest

from bench import ROOT
from bench.ipc import halt_poll
from bench.ipc.procs import Server, start_daemon
from mfpsecd.client import Connection


def test_the_bench_daemon_starts_on_a_copy_of_the_sim_board_and_answers(tmp_path: Path) -> None:
    server, sock, reply = start_daemon(tmp_path / "ours", pinned=False)
    try:
        status = json.loads(reply)["parameters"]
        assert status["board"] == "bench"
        assert sock.is_socket()
    finally:
        server.stop()
    assert server.exit_status == 0


@pytest.fixture
def param(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake = tmp_path / "guest_halt_poll_ns"
    fake.write_text("0\n")
    monkeypatch.setattr(halt_poll, "PARAM", fake)
    return fake


def test_the_window_is_set_for_the_measurement_and_restored(param: Path) -> None:
    seen = halt_poll.within(200_000, param.read_text)()
    assert seen == "200000\n"
    assert param.read_text() == "0\n"


def test_the_window_is_restored_when_the_measurement_fails(param: Path) -> None:
    def fails() -> None:
        assert param.read_text() == "200000\n"
        raise RuntimeError("client failed")

    with pytest.raises(RuntimeError, match="client failed"):
        halt_poll.within(200_000, fails)()
    assert param.read_text() == "0\n"


def test_only_a_guest_with_the_window_off_is_adjusted(param: Path) -> None:
    assert halt_poll.adjustable()
    assert "guest_halt_poll_ns=0" in halt_poll.describe()
    param.write_text("200000\n")
    assert not halt_poll.adjustable()


def test_the_reference_varlink_server_starts_and_answers_our_status(tmp_path: Path) -> None:
    """Peer (a) loads the System interface's IDL from the capability's folder; a move
    of that file once left the suite unable to start it."""
    status = {"version": "0", "board": "bench", "uptime_seconds": 1.0}
    status_file = tmp_path / "status.json"
    status_file.write_text(json.dumps(status))
    sock = tmp_path / "varlink.sock"
    server = Server(
        "varlink",
        [sys.executable, "-m", "bench.ipc.varlink_peer", str(sock), str(status_file)],
        tmp_path / "varlink.log",
        cwd=ROOT,
    )
    try:
        assert server.read_line() == "ready"
        with Connection(str(sock), timeout=10) as conn:
            reply = msgspec.json.decode(conn.call("io.mfpsecd.System.GetStatus"))
        assert reply["board"] == "bench" and reply["uptime_seconds"] >= 1.0
    finally:
        server.stop()
