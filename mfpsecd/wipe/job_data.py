"""Job data (SPEC W-1): the job store hands over a finished job's file; on HDD it is
overwritten with the temporary-data mode and unlinked, on flash it is only unlinked (an
overwrite does not reach the cells that held it: the job store's crypto-erase is what
protects it)."""

from __future__ import annotations

import os
from pathlib import Path

from mfpsecd.base.transfer import WorkerPool
from mfpsecd.wipe.model.overwrite_plan import (
    Medium,
    OverwritePlan,
    PassKind,
    ReadBack,
    temporary_plan,
)
from mfpsecd.wipe.ports import Overwriter, PassSpec


class JobDataOverwriter:
    """Overwrites and unlinks the files of finished jobs, in the wipe capability's threads."""

    def __init__(self, overwriter: Overwriter, pool: WorkerPool, temporary_mode: int) -> None:
        self._overwriter = overwriter
        self._pool = pool
        self.temporary_mode = temporary_mode

    async def overwrite(self, path: Path, medium: Medium) -> str:
        """Overwrite (HDD) and unlink one finished job's file. → what was done."""
        plan = temporary_plan(self.temporary_mode, medium)
        await self._pool.call(self._overwrite_and_unlink, path, plan)
        if plan is None:
            return "unlinked; overwrite is ineffective on flash, crypto-erase applies"
        return plan.describe()

    def _overwrite_and_unlink(self, path: Path, plan: OverwritePlan | None) -> None:
        if plan is not None:
            target = self._overwriter.open_file(path)
            try:
                size = target.size
                last = PassSpec(PassKind.BYTE)
                for p in plan.passes:
                    key = self._overwriter.new_key() if p.kind is PassKind.RANDOM else b""
                    last = PassSpec(p.kind, p.byte, key)
                    target.write_pass(0, size, last, target.new_progress(), 0)
                if plan.verification is ReadBack.LAST_PASS:
                    target.verify(0, size, last, target.new_progress())
            finally:
                target.close()
        os.unlink(path)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
