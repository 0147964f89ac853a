"""The key chain's backends picked by the board profile."""

from __future__ import annotations

from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import TpmBackend
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.keys.backends.swtpm import SwtpmProcess
from mfpsecd.keys.backends.tpm2 import Tpm2Backend
from mfpsecd.keys.ports import Tpm


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
