"""The audit log on disk: one append-only file of frames, written in batches.

    frame = u32 length (big-endian) | payload (a canonical record) | u32 CRC-32 of the payload

A batch of frames is written with one write and made durable with one fdatasync (group
commit: every record in the batch is acknowledged by the same flush). A power cut can leave
a torn last batch: at open the file is scanned, and everything from the first frame whose
length runs past the end of the file or whose checksum does not match is cut off (and
reported, so the service records that it happened). The file is opened O_APPEND and
0600; nothing ever rewrites a frame in place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mfpsecd import _native
from mfpsecd.api import auditlog
from mfpsecd.api.auditlog import frame, scan
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.ports import AuditTailRepair

T = TypeVar("T")


class AuditFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit")

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _open(self) -> tuple[list[bytes], AuditTailRepair | None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE,
                              reason=f"audit log: {exc.strerror}") from None
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
        payloads, good_end, why = scan(data)
        repair = None
        if good_end < len(data):
            os.ftruncate(fd, good_end)
            os.fsync(fd)
            repair = AuditTailRepair(good_end, len(data) - good_end, why)
        os.close(fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        return payloads, repair

    async def open(self) -> tuple[list[bytes], AuditTailRepair | None]:
        """Open (creating it), cut a torn tail; → (the records, what was cut)."""
        return await self._call(self._open)

    def _append(self, payloads: list[bytes]) -> None:
        data = b"".join(frame(p) for p in payloads)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            os.fdatasync(self._fd)
        except OSError as exc:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE,
                              reason=f"audit log: {exc.strerror}") from None

    async def append(self, payloads: list[bytes]) -> None:
        """Write a batch and make it durable (one fdatasync for the whole batch)."""
        await self._call(lambda: self._append(payloads))

    def _read(self) -> list[bytes]:
        with open(self.path, "rb") as f:
            payloads, _, _ = scan(f.read())
        return payloads

    async def read_all(self) -> list[bytes]:
        return await self._call(self._read)

    async def verify(self, payloads: list[bytes] | None = None) -> auditlog.Verdict:
        """Check the chain of the given records (default: the whole file) in C."""
        def run() -> auditlog.Verdict:
            records = self._read() if payloads is None else payloads
            return verify_fast(records)

        return await self._call(run)

    async def close(self) -> None:
        def close() -> None:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

        await self._call(close)
        self._executor.shutdown(wait=True)


def verify_fast(records: list[bytes]) -> auditlog.Verdict:
    """auditlog.verify's verdict, with the chain walked in C; only a break goes through
    the Python walker, to name its kind."""
    kind, _, last_hash = _native.audit_chain(records, 1, auditlog.GENESIS)
    if kind != 0:
        return auditlog.verify(records)
    last_seq = len(records)
    return auditlog.Verdict(True, len(records), last_seq, last_hash)
