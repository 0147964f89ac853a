"""What one process at a time may hold: the state directory, and the board's TPM."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mfpsecd.backends.soft_keys import SoftwareKeys
from mfpsecd.backends.swtpm import SwtpmProcess
from mfpsecd.backends.tpm2 import Tpm2Backend
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import TpmBackend
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.ports import Tpm


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


async def make_tpm(board: Board) -> tuple[SwtpmProcess | None, Tpm]:
    """The board's TPM: a kernel device, a swtpm the board starts itself, or none."""
    spec, paths = board.profile.tpm, board.paths
    if spec.backend is TpmBackend.NONE:
        return None, SoftwareKeys(paths.state_dir)
    if spec.backend is TpmBackend.SWTPM:
        swtpm = SwtpmProcess(paths.state_dir / "tpm")
        tcti = await swtpm.start()
        return swtpm, Tpm2Backend(tcti, "swtpm")
    device = paths.dev_root / (spec.device or "tpmrm0")
    return None, Tpm2Backend(f"device:{device}", "device")
