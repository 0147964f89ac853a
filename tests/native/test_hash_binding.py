"""Firmware tree hashing through the binding: digests equal hashlib's, every refusal is
named, nothing outside the tree or behind a link is read, and the GIL is released."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from mfpsecd import _native


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a": b"", "lib/b.so": os.urandom(5000), "lib/c.bin": os.urandom(3 << 20)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "lib" / "b.so").chmod(0o755)
    (root / "escape").symlink_to("/etc/hostname")
    return files


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("F-1")
def test_digests_modes_and_refusals(tmp_path: Path) -> None:
    files = _tree(tmp_path)
    dirfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        items = [(rel, len(data), hashlib.sha256(data).digest()) for rel, data in files.items()]
        out = _native.hash_files(dirfd, items, 2, True)
        assert [r[0] for r in out] == [_native.HASH_OK] * 3
        assert out[1][3] == 0o755 and out[2][2] == 3 << 20
        assert [r[4] for r in out] == [hashlib.sha256(d).digest() for d in files.values()]
        refused = _native.hash_files(
            dirfd,
            [
                ("escape", -1, None),
                ("../x", -1, None),
                ("lib", -1, None),
                ("a", 1, None),
                ("lib/b.so", -1, bytes(32)),
                ("missing", -1, None),
            ],
            2,
            False,
        )
        assert [r[0] for r in refused] == [
            _native.HASH_SYMLINK,
            _native.HASH_ESCAPES,
            _native.HASH_NOT_REGULAR,
            _native.HASH_SIZE,
            _native.HASH_MISMATCH,
            _native.HASH_MISSING,
        ]
    finally:
        os.close(dirfd)


def test_runs_without_the_gil(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(64 << 20))
    dirfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    ticks = 0
    done = threading.Event()

    def run() -> None:
        _native.hash_files(dirfd, [("big", -1, None)] * 4, 2, False)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    while not done.is_set():
        ticks += 1  # this thread keeps running while C hashes 256 MiB
    worker.join()
    os.close(dirfd)
    assert ticks > 1000
