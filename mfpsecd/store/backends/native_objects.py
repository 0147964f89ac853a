"""The ObjectCipher port on the native stream engine (native/stream/stream_format.c and
stream_pipeline.c).

Every errno of the engine becomes an ErrorCode here, in one table."""

from __future__ import annotations

import errno
import os

from mfpsecd import _native
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.transfer import Progress

KEY_BYTES = 32


def _translate(exc: _native.NativeError, name: str, state: _native.StreamState) -> MfpsecError:
    code = exc.errno or 0
    if code == errno.EBADMSG:
        return MfpsecError(ErrorCode.STORE_INTEGRITY, object=name, segment=state.bad_segment)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return MfpsecError(ErrorCode.STORE_FULL, object=name)
    label = errno.errorcode.get(code, str(code))
    return MfpsecError(
        ErrorCode.STORE_IO_ERROR, object=name, reason=f"{label}: {os.strerror(code)}"
    )


class StreamProgress:
    """The engine's shared progress and cancel (struct mfp_stream_state)."""

    def __init__(self) -> None:
        self.state = _native.StreamState()

    @property
    def moved(self) -> int:
        return self.state.bytes_moved

    def cancel(self) -> None:
        self.state.cancel()


def _state(progress: Progress | None) -> _native.StreamState:
    if progress is None:
        return _native.StreamState()
    assert isinstance(progress, StreamProgress)
    return progress.state


class NativeObjectCipher:
    def __init__(
        self, *, threads: int = 2, segment_shift: int = _native.STREAM_DEFAULT_SHIFT
    ) -> None:
        if not 1 <= threads <= _native.STREAM_MAX_THREADS:
            raise ValueError("threads out of range")
        if not _native.STREAM_MIN_SHIFT <= segment_shift <= _native.STREAM_MAX_SHIFT:
            raise ValueError("segment_shift out of range")
        self._threads = threads
        self._shift = segment_shift

    def new_key(self) -> SecretBytes:
        return SecretBytes.random(KEY_BYTES)

    def progress(self) -> StreamProgress:
        return StreamProgress()

    def seal(
        self,
        key: SecretBytes,
        context: bytes,
        src_fd: int,
        dst_fd: int,
        name: str,
        *,
        progress: Progress | None = None,
    ) -> tuple[int, int]:
        state = _state(progress)
        try:
            sealed = _native.stream_seal_fd(
                key.view(),
                context,
                self._shift,
                self._threads,
                _native.STREAM_DIRECT,
                src_fd,
                dst_fd,
                state,
            )
        except _native.NativeError as exc:
            raise _translate(exc, name, state) from None
        return state.bytes_in, sealed

    def verify(self, key: SecretBytes, context: bytes, src_fd: int, name: str) -> int:
        state = _native.StreamState()
        try:
            return _native.stream_open_fd(key.view(), context, self._threads, 0, src_fd, -1, state)
        except _native.NativeError as exc:
            raise _translate(exc, name, state) from None

    def open(
        self,
        key: SecretBytes,
        context: bytes,
        src_fd: int,
        dst_fd: int,
        name: str,
        *,
        progress: Progress | None = None,
    ) -> int:
        state = _state(progress)
        try:
            return _native.stream_open_fd(
                key.view(), context, self._threads, 0, src_fd, dst_fd, state
            )
        except _native.NativeError as exc:
            raise _translate(exc, name, state) from None
