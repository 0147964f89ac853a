"""Issue 25 item 4: the Python clients follow a stream across a lost connection the way
its declaration says it goes on. The event stream resumes after the last sequence number
it delivered: a daemon restart costs the panel no event and repeats none. The status
stream starts again and shows the daemon that came back after a crash."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.client import Connection, NoParams, follow, follow_async
from mfpsecd.keys import api as keys
from mfpsecd.system import api as system
from tests.support import daemon as ds

pytestmark = pytest.mark.root

WANTED = {f"s{i}" for i in range(6)}


def _secrets(socket: str, numbers: range) -> None:
    with Connection(socket) as conn:
        for i in numbers:
            conn.call(keys.SET_SECRET, keys.SetSecretParams(f"s{i}", "other", bytearray(b"x")))


def test_events_resume_after_a_daemon_restart_without_gap_or_repeat(short_tmp: Path) -> None:
    root = short_tmp / "d"
    got: list[system.Event] = []
    lost: list[MfpsecError] = []
    subscribed, seen_first = threading.Event(), threading.Event()

    def watch(socket: str) -> None:
        params = system.WatchEventsParams(-1, 5)
        for batch in follow(socket, system.WATCH_EVENTS, params, silence_s=15, on_lost=lost.append):
            subscribed.set()
            got.extend(batch.events)
            names = {e.object for e in got if e.type == "secret.set"}
            if {"s0", "s1", "s2"} <= names:
                seen_first.set()
            if names >= WANTED:
                return

    with ds.running(root, tpm="none") as d:
        watcher = threading.Thread(target=watch, args=(d.socket_path,), daemon=True)
        watcher.start()
        assert subscribed.wait(30)
        _secrets(d.socket_path, range(3))
        assert seen_first.wait(30)
    assert watcher.is_alive()  # the daemon is gone; the follower waits for it
    with ds.running(root, tpm="none") as d:
        _secrets(d.socket_path, range(3, 6))
        watcher.join(60)
    assert not watcher.is_alive()
    assert lost and all(e.code is ErrorCode.DAEMON_UNREACHABLE for e in lost)
    assert sorted(e.object for e in got if e.type == "secret.set") == sorted(WANTED)
    seqs = [e.seq for e in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing missed, nothing twice
    assert {"audit.stop", "audit.start"} <= {e.type for e in got}  # and what happened between


def test_the_status_stream_comes_back_with_the_daemon_after_a_crash(short_tmp: Path) -> None:
    root = short_tmp / "d"
    lost: list[MfpsecError] = []

    async def scenario(d: ds.DaemonProcess) -> tuple[system.Status, system.Status]:
        stream = follow_async(
            d.socket_path, system.WATCH_STATUS, NoParams(), silence_s=60, on_lost=lost.append
        )
        first = await anext(stream)
        d.proc.kill()  # no final reply: the connection is simply cut
        d.proc.wait()
        again = await asyncio.to_thread(ds.start, root, tpm="none")
        try:
            async for s in stream:
                if s.boot_count > first.boot_count:  # the daemon that came back
                    return first, s
            raise AssertionError("the stream ended")
        finally:
            again.stop()
            again.close_notify()

    d = ds.start(root, tpm="none")
    try:
        first, back = asyncio.run(asyncio.wait_for(scenario(d), 90))
    finally:
        d.close_notify()
    assert lost and lost[0].code is ErrorCode.DAEMON_UNREACHABLE
    assert back.boot_count == first.boot_count + 1 and back.previous_shutdown == "unclean"


def test_a_daemon_never_reached_is_an_error_at_once(short_tmp: Path) -> None:
    with pytest.raises(MfpsecError) as exc:
        next(follow(str(short_tmp / "none.sock"), system.WATCH_STATUS, NoParams(), silence_s=5))
    assert exc.value.code is ErrorCode.DAEMON_UNREACHABLE


def test_a_stream_the_daemon_ended_early_goes_on_after_its_restart(short_tmp: Path) -> None:
    """`until`: the status stream's last reply ("stopping") is taken as an early end, as a
    job's watch takes a last reply that says the job is still running."""
    root = short_tmp / "d"
    seen: list[system.Status] = []
    lost: list[MfpsecError] = []
    first = threading.Event()

    def watch(socket: str) -> None:
        for s in follow(
            socket,
            system.WATCH_STATUS,
            NoParams(),
            silence_s=60,
            on_lost=lost.append,
            until=lambda s: False,
        ):
            seen.append(s)
            first.set()
            if s.boot_count > seen[0].boot_count:
                return

    with ds.running(root, tpm="none") as d:
        watcher = threading.Thread(target=watch, args=(d.socket_path,), daemon=True)
        watcher.start()
        assert first.wait(30)
    # A clean stop: the stream ended with "stopping", and the watch goes on.
    deadline = time.monotonic() + 20
    while not any(s.state is system.DaemonState.STOPPING for s in seen):
        assert time.monotonic() < deadline, [s.state for s in seen]
        time.sleep(0.05)
    assert watcher.is_alive()
    with ds.running(root, tpm="none"):
        watcher.join(60)
    assert not watcher.is_alive()
    assert seen[-1].boot_count == seen[0].boot_count + 1
    assert lost and lost[0].params["reason"] == "stream ended early"
