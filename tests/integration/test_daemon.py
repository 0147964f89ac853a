"""The real daemon as a subprocess, driven by the real CLI and the Python client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mfpsecd.base.errors import EX_CONFIG, EX_UNAVAILABLE, ErrorCode
from mfpsecd.base.health import HealthState
from mfpsecd.client import Connection
from mfpsecd.store import api as store
from mfpsecd.system import api as system
from mfpsecd.system.api import DaemonState
from tests.support import daemon as ds

MFPSEC = ds.MFPSEC
mfpsec = ds.mfpsec


def test_status_human_and_json(daemon: ds.DaemonProcess) -> None:
    human = mfpsec(daemon.socket_path, "status")
    assert human.returncode == 0, human.stderr
    assert "mfpsecd 0.1.0 on board testboard (simulated): ready" in human.stdout
    for component in ("self-test", "ipc", "state-db", "ipc-idle-reaper"):
        assert component in human.stdout

    as_json = mfpsec(daemon.socket_path, "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["state"] == "ready"
    assert doc["board"] == "testboard"
    assert doc["boot_count"] == 1
    assert doc["previous_shutdown"] == "none"
    states = {c["name"]: c["state"] for c in doc["components"]}
    assert set(states.values()) == {"ok"}
    assert states.keys() >= {"self-test", "ipc", "state-db", "state-checkpoint"}


def test_ready_only_after_start_up_and_status_lines(daemon: ds.DaemonProcess) -> None:
    notes = daemon.notifications
    ready = notes.index("READY=1")
    statuses = [n for n in notes[:ready] if n.startswith("STATUS=")]
    assert statuses == [
        "STATUS=opening state store",
        "STATUS=opening the audit log",
        "STATUS=opening the key chain",
        "STATUS=running power-on self-tests",
        "STATUS=resuming sanitizations",
        "STATUS=opening the job store",
        "STATUS=judging the USB devices",
        "STATUS=starting IPC",
    ]
    # At READY the socket already answers.
    with Connection(daemon.socket_path) as conn:
        assert conn.call(system.GET_STATUS).state is DaemonState.READY


def test_sigterm_removes_socket_and_records_clean_stop(short_tmp: Path) -> None:
    root = short_tmp / "d"
    with ds.running(root) as d:
        sock = Path(d.socket_path)
        assert sock.is_socket()
        assert oct(sock.stat().st_mode & 0o777) == "0o660"
        assert d.stop(signal.SIGINT) == 0
        d.wait_notification("STOPPING=1")
        assert not sock.exists()
    with ds.running(root) as d, Connection(d.socket_path) as conn:
        s = conn.call(system.GET_STATUS)
        assert (s.boot_count, s.previous_shutdown) == (2, "clean")


def test_power_cut_is_reported_as_unclean_and_stale_socket_replaced(short_tmp: Path) -> None:
    root = short_tmp / "d"
    with ds.running(root) as d:
        d.stop(signal.SIGKILL)
        assert Path(d.socket_path).exists()  # a killed daemon leaves its socket behind
    with ds.running(root) as d, Connection(d.socket_path) as conn:
        s = conn.call(system.GET_STATUS)
        assert (s.boot_count, s.previous_shutdown) == (2, "unclean")


def test_second_daemon_on_same_state_or_socket_refuses(daemon: ds.DaemonProcess) -> None:
    second = subprocess.run(
        [*ds.MFPSECD, "run", "--config", str(daemon.config), "--board", str(daemon.board)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ds.ROOT,
    )
    assert second.returncode == EX_CONFIG
    assert "another daemon is using the state directory" in second.stderr
    # Its own state, but the first one's socket.
    (daemon.root / "other").mkdir()
    other = ds.write_board(daemon.root / "other", tpm="none")
    config = daemon.root / "other" / "mfpsecd.toml"
    config.write_text(ds.toml_doc({"ipc": {"socket_path": daemon.socket_path}}))
    third = subprocess.run(
        [*ds.MFPSECD, "run", "--config", str(config), "--board", str(other)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ds.ROOT,
    )
    assert third.returncode == EX_CONFIG
    assert "another daemon is serving" in third.stderr
    with Connection(daemon.socket_path) as conn:  # the first one is unharmed
        assert conn.call(system.GET_STATUS).state is DaemonState.READY


def test_invalid_config_names_the_key(short_tmp: Path) -> None:
    ds.write_board(short_tmp)
    cfg = short_tmp / "bad.toml"
    cfg.write_text(f'[daemon]\nboard_dir = "{short_tmp}"\n[ipc]\nmax_connections = 100000\n')
    r = subprocess.run(
        [*ds.MFPSECD, "run", "--config", str(cfg), "--board", "testboard"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ds.ROOT,
    )
    assert r.returncode == EX_CONFIG
    assert "ipc.max_connections: expected int <= 4096" in r.stderr

    cfg.write_text("[ipc]\nmax_conections = 5\n")
    r = subprocess.run(
        [
            *ds.MFPSECD,
            "check-config",
            "--config",
            str(cfg),
            "--board",
            str(short_tmp / "testboard.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ds.ROOT,
    )
    assert r.returncode == EX_CONFIG
    assert "ipc.max_conections: unknown key" in r.stderr


def test_cli_exit_status_when_daemon_is_absent(short_tmp: Path) -> None:
    r = mfpsec(str(short_tmp / "nothing.sock"), "status")
    assert r.returncode == EX_UNAVAILABLE
    assert "cannot connect to mfpsecd" in r.stderr
    assert ErrorCode.DAEMON_UNREACHABLE.wire_name in r.stderr


def test_watch_status_streams_changes(daemon: ds.DaemonProcess) -> None:
    with Connection(daemon.socket_path) as conn:
        stream = conn.call_more(system.WATCH_STATUS)
        first = next(stream)
        assert first.state is DaemonState.READY
        # Stopping the daemon changes its state: the stream reports it before the end.
        daemon.proc.send_signal(signal.SIGTERM)
        states = [s.state for s in stream]  # ends with the final (non-continues) reply
        assert states[-1] is DaemonState.STOPPING
    assert daemon.proc.wait(20) == 0


def test_watchdog_pings_at_half_the_interval(short_tmp: Path) -> None:
    env = {"WATCHDOG_USEC": "400000", "WATCHDOG_PID": ""}
    with ds.running(short_tmp / "d", env=env) as d:
        d.notifications.clear()
        d.wait_notification("WATCHDOG=1", timeout=5)
        d.notifications.clear()
        d.wait_notification("WATCHDOG=1", timeout=5)
        with Connection(d.socket_path) as conn:
            comps = {c.name: c for c in conn.call(system.GET_STATUS).components}
        assert comps["watchdog"].state is HealthState.OK


def test_make_run_profile_is_valid() -> None:
    r = subprocess.run(
        [*ds.MFPSECD, "check-config", "--config", "hw/mfpsecd.sim.toml"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ds.ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert "ok: board sim" in r.stdout
    cfg = Path(os.environ.get("TMPDIR", "/tmp")) / f"mfpsecd-etc-{os.getpid()}.toml"
    # The shipped /etc config parses (its board_dir and group point at a device install).
    text = (ds.ROOT / "etc/mfpsecd.toml").read_text()
    cfg.write_text(text.replace("/usr/share/mfpsecd/hw", str(ds.ROOT / "hw")))
    try:
        r = subprocess.run(
            [*ds.MFPSECD, "check-config", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=ds.ROOT,
        )
        assert r.returncode == 0, r.stderr
        assert "ok: board generic-x86" in r.stdout
    finally:
        cfg.unlink()


@pytest.mark.systemd
def test_socket_activation(short_tmp: Path) -> None:
    """Started by systemd-socket-activate with both sockets (as mfpsecd.socket and
    mfpsecd-fd.socket pass them): serves the passed fds, leaves the sockets to it."""
    sock = short_tmp / "act.sock"
    fd_sock = short_tmp / "act.fd.sock"
    activator = [
        "systemd-socket-activate",
        "-E",
        "NOTIFY_SOCKET",
        "-l",
        str(sock),
        "-l",
        str(fd_sock),
        "--fdname=varlink:fd",
    ]
    d = ds.start(short_tmp / "d", argv_prefix=activator, wait_ready=False)
    try:
        # The activator binds the socket, then execs the daemon on the first connection.
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert time.monotonic() < deadline and d.proc.poll() is None, d.log()
            time.sleep(0.01)
        with Connection(str(sock)) as conn:
            s = conn.call(system.GET_STATUS)
        ipc = next(c for c in s.components if c.name == "ipc")
        assert ipc.detail == ("listening on socket activation; descriptors on socket activation")
        assert not Path(d.socket_path).exists()  # it did not bind its own
        # The passed side channel works: a descriptor goes through it.
        with Connection(str(sock)) as conn:
            r, w = os.pipe()
            os.write(w, b"through the activated side channel")
            os.close(w)
            try:
                params = store.PutParams(conn.pass_descriptor(r), "j", "spool", "n", owner="alice")
                stored = conn.call(store.PUT, params)
            finally:
                os.close(r)
        assert stored.size == len(b"through the activated side channel")
        d.wait_notification("READY=1")
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        d.close_notify()


def test_cli_watch_prints_until_the_daemon_stops(daemon: ds.DaemonProcess) -> None:
    proc = subprocess.Popen(
        [
            *MFPSEC,
            "--socket",
            daemon.socket_path,
            "--timeout",
            "0.5",
            "status",
            "--watch",
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ds.ROOT,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the watch is open: the first status arrived
    assert first.strip() == "{"
    daemon.stop()
    out, _ = proc.communicate(timeout=30)
    # The stream ends with the final "stopping" reply, not with a timeout or a cut.
    assert proc.returncode == 0
    assert '"state": "stopping"' in out
