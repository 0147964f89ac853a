"""Where a key backup goes: a directory, or a backup target (a USB stick's partition,
named by its udev id) wherever it is mounted now."""

from __future__ import annotations

from pathlib import Path

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.keys.ports import BackupTargetWatcher


def resolve_target(targets: BackupTargetWatcher, target: str) -> Path:
    for t in targets.current():
        if t.id == target:
            if not t.mount_point:
                raise MfpsecError(
                    ErrorCode.BACKUP_TARGET_UNUSABLE, target=target, reason="not mounted"
                )
            return Path(t.mount_point)
    path = Path(target)
    if not path.is_absolute():
        raise MfpsecError(
            ErrorCode.BACKUP_TARGET_UNUSABLE,
            target=target,
            reason="neither an absolute path nor a backup target id",
        )
    return path
