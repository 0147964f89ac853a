"""The overwrite engine through its binding: the GIL is released for the whole pass, the
shared state is readable while it runs, and cancel from another thread stops it."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfpsecd import _native

SIZE = 96 << 20


@pytest.fixture
def target(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "t.img", os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, SIZE)
    yield fd
    os.close(fd)


def test_pass_runs_without_the_gil_and_reports_progress(target: int) -> None:
    state = _native.WipeState()
    key = os.urandom(32)
    seen: list[int] = []
    done = threading.Event()

    def run() -> None:
        _native.wipe_write(target, 0, SIZE, 1, 0, key, _native.WIPE_DIRECT, 16 << 20, state)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    spins = 0
    # Python keeps running (and sees the position move) while the pass is in C.
    while not done.is_set():
        spins += 1
        seen.append(state.position)
    worker.join()
    assert spins > 1
    assert state.position == state.durable == SIZE
    assert seen == sorted(seen)
    _native.wipe_verify(target, 0, SIZE, 1, 0, key, _native.WIPE_DIRECT, state)
    assert os.pread(target, 16, 4096) != bytes(16)


def _cancel_once_started(target: int) -> tuple[_native.WipeState, list[OSError]]:
    zero = b""
    _native.wipe_write(target, 0, SIZE, 0, 0xFF, zero, 0, 0, _native.WipeState())
    # A fresh state: the watcher below must not see the first pass's final position and
    # cancel before this pass has begun.
    state = _native.WipeState()
    result: list[OSError] = []

    def run() -> None:
        try:
            _native.wipe_write(target, 0, SIZE, 0, 0x00, zero, _native.WIPE_DIRECT, 0, state)
        except _native.NativeError as exc:
            result.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    while state.position == 0 and worker.is_alive():
        pass
    state.cancel()
    worker.join()
    return state, result


def test_cancel_from_another_thread_leaves_an_exact_durable_offset(target: int) -> None:
    # The pass may, rarely, finish between the watcher seeing it start and the cancel:
    # try again rather than skip (a skip fails CI).
    for _ in range(5):
        state, result = _cancel_once_started(target)
        if result:
            break
    else:
        pytest.fail("every pass finished before the cancel arrived")
    assert result[0].errno == errno.ECANCELED
    stop = state.durable
    assert 0 < stop < SIZE and stop % _native.WIPE_CHUNK_BYTES == 0
    assert os.pread(target, 4096, stop - 4096) == bytes(4096)
    assert os.pread(target, 4096, stop) == b"\xff" * 4096


def test_errors_arrive_as_native_error_with_errno(target: int) -> None:
    state = _native.WipeState()
    with pytest.raises(ValueError):
        _native.wipe_write(target, 0, 10, 1, 0, b"short", 0, 0, state)
    with pytest.raises(ValueError):
        _native.wipe_write(target, 0, 10, 0, 256, b"", 0, 0, state)
    with pytest.raises(TypeError):
        _native.wipe_write(target, 0, 10, 0, 0, b"", 0, 0, object())  # type: ignore[arg-type]
    with pytest.raises(_native.NativeError) as info:
        _native.wipe_verify(target, 0, SIZE + 1, 0, 0, b"", 0, state)
    assert info.value.errno == errno.ENODATA
    assert _native.wipe_geometry(target) == (SIZE, 512)
