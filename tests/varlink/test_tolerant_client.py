"""Clients keep working when the daemon grows (issue 25, the versioning policy): a reply
with fields this client does not know, at any depth, is typed without them, for a call
and for a stream; a reply that is wrong in what the client does know still fails."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from mfpsecd.client import Connection
from mfpsecd.system import api as system
from mfpsecd.varlink.tolerant import ReplyDecoder

STATUS = {
    "version": "9.9.9",
    "board": "b",
    "board_kind": "simulated",
    "state": "ready",
    "started_at": "t",
    "uptime_seconds": 1.5,
    "boot_count": 3,
    "previous_shutdown": "clean",
    "components": [
        {
            "name": "ipc",
            "state": "ok",
            "detail": "",
            "restarts": 0,
            "since": "t",
            "added_later": {"deep": [1, 2]},
        }
    ],
    "notices": [],
    "a_field_from_a_newer_daemon": True,
}


@contextlib.contextmanager
def _serve(path: Path, replies: list[bytes]) -> Iterator[None]:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)  # the call
            for r in replies:
                conn.sendall(r + b"\0")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        t.join(5)
        server.close()


def _reply(parameters: object, continues: bool = False) -> bytes:
    out: dict[str, object] = {"parameters": parameters}
    if continues:
        out["continues"] = True
    return json.dumps(out).encode()


def test_unknown_reply_fields_are_dropped_at_any_depth(short_tmp: Path) -> None:
    sock = short_tmp / "s"
    with _serve(sock, [_reply(STATUS)]), Connection(str(sock)) as conn:
        status = conn.call(system.GET_STATUS)
    assert status.version == "9.9.9" and status.components[0].name == "ipc"
    assert status.state is system.DaemonState.READY


def test_a_stream_from_a_newer_daemon_is_read(short_tmp: Path) -> None:
    sock = short_tmp / "s"
    batch = {
        "events": [
            {
                "seq": 7,
                "time": "t",
                "type": "auth.lockout",
                "outcome": "success",
                "alert": "account locked",
                "object": "bob",
                "user": "",
                "details": {},
                "severity": "high",  # a field added later
            }
        ],
        "last_seq": 7,
        "missed": 0,
        "behind": 0,
        "keepalive": False,
        "epoch": 2,
    }
    with (
        _serve(sock, [_reply(batch, continues=True), _reply(batch)]),
        Connection(str(sock)) as conn,
    ):
        got = list(conn.call_more(system.WATCH_EVENTS, system.WatchEventsParams()))
    assert [b.events[0].seq for b in got] == [7, 7]


def test_what_the_client_knows_must_still_be_right() -> None:
    decoder = ReplyDecoder(system.Status)
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(json.dumps({**STATUS, "boot_count": "three"}).encode())
