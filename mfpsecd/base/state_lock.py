"""What one process at a time may hold: the state directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mfpsecd.base.errors import ErrorCode, MfpsecError


def lock_state_dir(state_dir: Path) -> int:
    """One daemon per state directory (its database, its swtpm, its keys): an exclusive
    lock held for the life of the process and released by the kernel if it dies."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            f"another daemon is using the state directory {state_dir}",
            key="paths.state_dir",
            reason="in use by a running daemon",
        ) from None
    return fd
