"""The TreeHasher port on the native hashing engine (native/hash/hashfiles.c)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mfpsecd import _native
from mfpsecd.firmware.ports import HashedFile

_STATUS = {
    _native.HASH_OK: "ok",
    _native.HASH_MISMATCH: "mismatch",
    _native.HASH_SIZE: "size",
    _native.HASH_NOT_REGULAR: "not-regular",
    _native.HASH_MISSING: "missing",
    _native.HASH_ESCAPES: "escapes",
    _native.HASH_SYMLINK: "symlink",
    _native.HASH_IO: "io",
    _native.HASH_SKIPPED: "skipped",
}


class NativeTreeHasher:
    def __init__(self, threads: int = 2) -> None:
        self._threads = threads

    def hash(
        self, root: Path, items: Sequence[tuple[str, int, bytes | None]], *, stop_early: bool
    ) -> list[HashedFile]:
        # Large files first: the last thread is not left alone with one.
        order = sorted(range(len(items)), key=lambda i: -items[i][1])
        dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            rows = _native.hash_files(dirfd, [items[i] for i in order], self._threads, stop_early)
        finally:
            os.close(dirfd)
        out: list[HashedFile | None] = [None] * len(items)
        for i, (status, _err, size, mode, digest) in zip(order, rows, strict=True):
            out[i] = HashedFile(items[i][0], _STATUS[status], size, mode, digest)
        return [h for h in out if h is not None]
