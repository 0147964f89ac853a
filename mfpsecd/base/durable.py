"""Files that are either complete or absent after a power cut: write a new file, flush
it, rename it into place, flush the directory (ARCHITECTURE: durable state)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_new(path: Path, data: bytes, mode: int = 0o600) -> None:
    """A new file (never through a link, never over an existing one), flushed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage(path: Path, data: bytes, mode: int = 0o600) -> Path:
    """The first half of replace_file: data written and flushed under a temporary name
    next to path (which is untouched until commit)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a power cut
    write_new(tmp, data, mode)
    return tmp


def commit(tmp: Path, path: Path) -> None:
    """The second half: the staged file takes path's place."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """path holds data, or what it held before: write-temp, fsync, rename, fsync dir."""
    commit(stage(path, data, mode), path)
