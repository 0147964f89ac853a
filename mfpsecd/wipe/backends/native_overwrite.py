"""The Overwriter port on the native overwrite engine (native/overwrite/overwrite.c).

All the engine's errno codes become ErrorCodes here, in one table. Block devices are opened
with O_EXCL: the kernel then refuses a device that is mounted or held by another driver
(a loop, md or dm holder), a second guard behind the inventory's mount check.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from mfpsecd import _native
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.wipe.model.overwrite_plan import PassKind
from mfpsecd.wipe.ports import MediaInfo, PassSpec, WipeProgress

_KIND = {PassKind.BYTE: 0, PassKind.RANDOM: 1}
KEY_BYTES = 32


def _translate(exc: _native.NativeError, target: str, progress: _native.WipeState) -> MfpsecError:
    code = exc.errno
    if code == errno.EBADMSG:
        return MfpsecError(
            ErrorCode.WIPE_VERIFY_FAILED, target=target, offset=progress.error_offset
        )
    if code == errno.ECANCELED:
        return MfpsecError(ErrorCode.WIPE_CANCELLED, job=target)
    if code == errno.ENODATA:
        return MfpsecError(
            ErrorCode.WIPE_IO_ERROR,
            target=target,
            offset=progress.error_offset,
            reason="the target ends before the range (it shrank?)",
        )
    name = errno.errorcode.get(code or 0, str(code))
    return MfpsecError(
        ErrorCode.WIPE_IO_ERROR,
        target=target,
        offset=progress.error_offset,
        reason=f"{name}: {os.strerror(code or 0)}",
    )


class NativeOverwriteTarget:
    def __init__(self, fd: int, name: str) -> None:
        self._fd = fd
        self._name = name
        self._size, self.logical_block = _native.wipe_geometry(fd)

    @property
    def size(self) -> int:
        return self._size

    def new_progress(self) -> WipeProgress:
        return _native.WipeState()

    def write_pass(
        self, start: int, end: int, spec: PassSpec, progress: WipeProgress, sync_every: int
    ) -> None:
        state = _state(progress)
        try:
            _native.wipe_write(
                self._fd,
                start,
                end,
                _KIND[spec.kind],
                spec.byte,
                spec.key,
                _native.WIPE_DIRECT,
                sync_every,
                state,
            )
        except _native.NativeError as exc:
            raise _translate(exc, self._name, state) from None

    def verify(self, start: int, end: int, spec: PassSpec, progress: WipeProgress) -> None:
        state = _state(progress)
        try:
            _native.wipe_verify(
                self._fd,
                start,
                end,
                _KIND[spec.kind],
                spec.byte,
                spec.key,
                _native.WIPE_DIRECT,
                state,
            )
        except _native.NativeError as exc:
            raise _translate(exc, self._name, state) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _state(progress: WipeProgress) -> _native.WipeState:
    if not isinstance(progress, _native.WipeState):
        raise TypeError("progress must come from this target's new_progress()")
    return progress


class NativeOverwriter:
    def open(self, info: MediaInfo) -> NativeOverwriteTarget:
        try:
            st = os.stat(info.path)
        except OSError as exc:
            raise MfpsecError(
                ErrorCode.WIPE_IO_ERROR,
                target=info.id,
                offset=0,
                reason=f"cannot open: {exc.strerror}",
            ) from None
        flags = os.O_RDWR | os.O_CLOEXEC
        if stat.S_ISBLK(st.st_mode):
            flags |= os.O_EXCL
        elif not stat.S_ISREG(st.st_mode):
            raise MfpsecError(
                ErrorCode.WIPE_TARGET_REFUSED,
                target=info.id,
                reason="neither a block device nor an image file",
            )
        try:
            fd = os.open(info.path, flags)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise MfpsecError(
                    ErrorCode.WIPE_TARGET_REFUSED,
                    target=info.id,
                    reason="the kernel reports it in use (mounted or held)",
                ) from None
            raise MfpsecError(
                ErrorCode.WIPE_IO_ERROR,
                target=info.id,
                offset=0,
                reason=f"cannot open: {exc.strerror}",
            ) from None
        return NativeOverwriteTarget(fd, info.id)

    def open_file(self, path: Path) -> NativeOverwriteTarget:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise MfpsecError(
                ErrorCode.WIPE_IO_ERROR,
                target=path.name,
                offset=0,
                reason=f"cannot open: {exc.strerror}",
            ) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise MfpsecError(
                ErrorCode.WIPE_TARGET_REFUSED, target=path.name, reason="not a regular file"
            )
        return NativeOverwriteTarget(fd, path.name)

    def new_key(self) -> bytes:
        key = bytearray(KEY_BYTES)
        _native.random_into(key)
        return bytes(key)
