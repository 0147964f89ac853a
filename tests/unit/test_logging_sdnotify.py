from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import structlog

from mfpsecd.daemon import logging as app_logging
from mfpsecd.daemon.sdnotify import SdNotifier


def test_json_lines_with_priority_and_no_locals_in_tracebacks() -> None:
    out = io.StringIO()
    app_logging.configure("info", stream=out)
    log = structlog.get_logger("t")

    def verify_pin(pin: str) -> None:
        secret_local = pin * 2  # noqa: F841 - must not appear in the log
        raise ValueError("bad pin")

    try:
        verify_pin("493817")
    except ValueError:
        log.error("verify_failed", exc_info=True)
    log.debug("not shown at info")
    log.warning("careful", n=1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("<3>{") and lines[1].startswith("<4>{")
    doc = json.loads(lines[0][3:])
    assert doc["event"] == "verify_failed" and doc["exception"][0]["exc_type"] == "ValueError"
    assert "493817" not in out.getvalue()
    assert all("locals" not in frame for frame in doc["exception"][0]["frames"])
    app_logging.configure("info")


def test_sd_notify_datagrams_and_watchdog(tmp_path: Path) -> None:
    path = str(tmp_path / "n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        n = SdNotifier.from_environment(
            {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
        )
        assert n.notify("READY=1", "STATUS=ok")
        assert srv.recv(100) == b"READY=1\nSTATUS=ok"
        assert n.watchdog_interval_s == 1.0
        n.close()
    other = SdNotifier.from_environment(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval_s is None  # the watchdog is meant for another process
    assert not SdNotifier.from_environment({}).notify("READY=1")


def test_sd_notify_abstract_namespace() -> None:
    name = f"mfpsecd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind("\0" + name)
        SdNotifier(f"@{name}", None).notify("READY=1")
        assert srv.recv(100) == b"READY=1"
