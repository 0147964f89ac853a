"""The audit log on disk: a directory of append-only segment files of frames.

    frame = u32 length (big-endian) | payload (a canonical record) | u32 CRC-32 of the payload
    segments: audit-00000001.log, audit-00000002.log, ... (0600, in a 0700 directory)

A batch of frames is written with one write and made durable with one fdatasync (group
commit: every record in the batch is acknowledged by the same flush). A power cut can leave
a torn last batch: at open the last segment is scanned and a damaged tail is cut off (and
reported, so the service records it); damage followed by good frames is never cut.

Capacity (L-5) is bounded: an append that would take the directory past max_bytes raises
AUDIT_FULL, and the service decides, by its policy, whether the oldest segment may go
(drop_oldest) or the operation is refused. A small reserve is kept for the audit
function's own records, so "the log is full" can itself be recorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec

from mfpsecd import _native
from mfpsecd.audit import log_format as auditlog
from mfpsecd.audit.frames import frame, scan
from mfpsecd.audit.log_format import head
from mfpsecd.audit.ports import AuditTailRepair, AuditUsage
from mfpsecd.base.errors import ErrorCode, MfpsecError

T = TypeVar("T")
_NAME = re.compile(r"^audit-(\d{8})\.log$")
SEGMENT_BYTES = 4 << 20
MIN_SEGMENT_BYTES = 64 << 10
MAX_BYTES = 64 << 20
RESERVE_BYTES = 64 << 10


@dataclass
class _Segment:
    number: int
    path: Path
    size: int
    first_seq: int = 0
    first_prev: str = ""
    last_seq: int = 0
    last_time: str = ""


class AuditFile:
    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        max_bytes: int = MAX_BYTES,
        reserve_bytes: int = RESERVE_BYTES,
    ) -> None:
        self.directory = directory
        # At least eight segments fit the capacity: dropping the oldest exported one
        # (overwrite-exported, retention) must free room, which a single segment as large
        # as the whole log never can (a 1 MiB log in 4 MiB segments stayed full for ever).
        self._segment_bytes = min(segment_bytes, max(max_bytes // 8, MIN_SEGMENT_BYTES))
        self._max_bytes = max_bytes
        self._reserve = reserve_bytes
        self._segments: list[_Segment] = []
        self._fd = -1
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit")

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # ---- opening

    def _open(self) -> tuple[list[bytes], AuditTailRepair | None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        numbers = sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := _NAME.match(p.name))
        )
        payloads: list[bytes] = []
        repair = None
        self._segments = []
        for i, number in enumerate(numbers):
            path = self._path(number)
            data = path.read_bytes()
            records, good_end, why = scan(data)
            if good_end < len(data) and i == len(numbers) - 1:
                with open(path, "r+b") as f:
                    f.truncate(good_end)
                    os.fsync(f.fileno())
                repair = AuditTailRepair(good_end, len(data) - good_end, why)
                data = data[:good_end]
            seg = _Segment(number, path, len(data))
            self._note(seg, records)
            self._segments.append(seg)
            payloads += records
        if not self._segments:
            self._new_segment(1)
        else:
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        return payloads, repair

    async def open(self) -> tuple[list[bytes], AuditTailRepair | None]:
        """Open (creating it), cut a torn tail; → (every record, oldest first; what was cut)."""
        return await self._call(self._open)

    def _path(self, number: int) -> Path:
        return self.directory / f"audit-{number:08d}.log"

    @staticmethod
    def _note(seg: _Segment, records: list[bytes]) -> None:
        if not records:
            return
        if not seg.first_seq:
            first = head(records[0])
            if first is not None:
                seg.first_seq, seg.first_prev = first
        last = head(records[-1])
        if last is not None:
            seg.last_seq = last[0]
        try:
            seg.last_time = auditlog.decode(records[-1]).time
        except msgspec.DecodeError:  # a damaged record: retention just cannot date it
            seg.last_time = ""

    def _new_segment(self, number: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1  # never a stale number another thread's open may reuse
        path = self._path(number)
        self._fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
        )
        # Known before the directory is flushed: if that fails, the next append writes
        # into this segment instead of creating it again (EEXIST).
        self._segments.append(_Segment(number, path, 0))
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # ---- writing

    def _total(self) -> int:
        return sum(s.size for s in self._segments)

    def _append(self, payloads: list[bytes], use_reserve: bool) -> None:
        data = b"".join(frame(p) for p in payloads)
        limit = self._max_bytes - (0 if use_reserve else self._reserve)
        if self._total() + len(data) > limit:
            raise MfpsecError(ErrorCode.AUDIT_FULL, policy="capacity reached")
        try:
            if self._segments[-1].size >= self._segment_bytes:
                self._new_segment(self._segments[-1].number + 1)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fdatasync(self._fd)
        except OSError as exc:
            self._cut_back()
            raise MfpsecError(
                ErrorCode.STATE_UNAVAILABLE, reason=f"audit log: {exc.strerror}"
            ) from None
        seg = self._segments[-1]
        seg.size += len(data)
        self._note(seg, payloads)

    def _cut_back(self) -> None:
        """After a failed write (a full file system stops a write part-way): the part of
        the batch that reached the file goes, so the next batch's frames follow the last
        acknowledged one instead of a torn frame. If even that fails, the next start
        repairs the tail (and records that it did)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._segments[-1].size)

    async def append(self, payloads: list[bytes], *, use_reserve: bool = False) -> None:
        """Write a batch and make it durable (one fdatasync for the whole batch).
        AUDIT_FULL if it does not fit (use_reserve: the audit function's own records)."""
        await self._call(lambda: self._append(payloads, use_reserve))

    def usage(self) -> AuditUsage:
        oldest = self._segments[0]
        return AuditUsage(
            used_bytes=self._total(),
            max_bytes=self._max_bytes,
            segments=len(self._segments),
            oldest_last_seq=oldest.last_seq,
            oldest_last_time=oldest.last_time,
            free_bytes=max(self._max_bytes - self._reserve - self._total(), 0),
        )

    def _drop_oldest(self) -> tuple[int, int, int, str]:
        if len(self._segments) < 2:
            raise MfpsecError(ErrorCode.AUDIT_FULL, policy="nothing old enough to drop")
        old = self._segments.pop(0)
        old.path.unlink()
        self._fsync_dir()
        new = self._segments[0]
        return old.first_seq, old.last_seq, new.first_seq, new.first_prev

    async def drop_oldest(self) -> tuple[int, int, int, str]:
        """Delete the oldest segment. → (its first seq, its last seq, and the new first
        record's seq and prev: the log's new base)."""
        return await self._call(self._drop_oldest)

    # ---- reading

    def _read(self) -> list[bytes]:
        out: list[bytes] = []
        for seg in self._segments:
            out += scan(seg.path.read_bytes())[0]
        return out

    async def read_all(self) -> list[bytes]:
        return await self._call(self._read)

    async def verify(
        self,
        payloads: list[bytes] | None = None,
        *,
        first_seq: int = 1,
        first_prev: bytes = auditlog.GENESIS,
    ) -> auditlog.Verdict:
        """Check the chain of the given records (default: everything stored) in C."""

        def run() -> auditlog.Verdict:
            records = self._read() if payloads is None else payloads
            return verify_fast(records, first_seq, first_prev)

        return await self._call(run)

    async def close(self) -> None:
        def close() -> None:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

        await self._call(close)
        self._executor.shutdown(wait=True)


def verify_fast(
    records: list[bytes], first_seq: int = 1, first_prev: bytes = auditlog.GENESIS
) -> auditlog.Verdict:
    """auditlog.verify's verdict, with the chain walked in C; only a break goes through
    the Python walker, to name its kind."""
    kind, _, last_hash = _native.audit_chain(records, first_seq, first_prev)
    if kind != 0:
        return auditlog.verify(records, first_seq=first_seq, first_prev=first_prev)
    return auditlog.Verdict(True, len(records), first_seq + len(records) - 1, last_hash)
