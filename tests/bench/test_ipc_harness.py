"""The ipc bench's own parts: the daemon it starts and the halt-polling window it sets.

The bench runs outside the suite; these keep it from rotting when the daemon's
configuration grows (a new mandatory key once left `python -m bench ipc` unable to start).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ipc import halt_poll
from bench.ipc.procs import start_daemon


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
