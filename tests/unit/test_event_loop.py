"""uvloop is optional (issue 26): where it is missing (32-bit ARM has no wheel) the daemon
runs on asyncio's own loop."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from mfpsecd.daemon.event_loop import event_loop_factory


def test_uvloop_when_installed() -> None:
    assert event_loop_factory() is uvloop.new_event_loop


def test_asyncio_loop_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    factory = event_loop_factory()
    assert factory is asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(asyncio.sleep(0, result="ran")) == "ran"
        assert not type(runner.get_loop()).__module__.startswith("uvloop")
