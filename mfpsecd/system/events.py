"""The panel's event stream (SPEC S-2): the audit log as it is written, each record a
caller may see, in order, from where it asks to start.

The log is the stream's buffer: a client is a cursor into it (the last sequence number it
was given), so a reconnecting panel resumes with `after` and loses nothing, and a slow
one holds no memory in the daemon: it reads the records later, at its own pace, and is
told how far behind it is. Only records the log no longer holds (dropped by retention or
by a full log's policy) are lost, and the client is told how many. A quiet stream sends a
keep-alive so that neither side takes silence for a dead connection.

Who sees what: a caller who may read the audit log gets every record with its details;
anyone else (the panel) gets the records an alert rule matches (lockouts, floods,
tampering, refused firmware, failed sanitizations, a protection of the posture lost...),
without details or who did it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec
import structlog

from mfpsecd.audit import log_format
from mfpsecd.audit.log_format import Record
from mfpsecd.base.clock import Clock
from mfpsecd.base.waits import first_of

log = structlog.get_logger("mfpsecd.system")

BATCH = 100  # records per reply at most


class AuditLog(Protocol):
    """What the stream reads of the audit log (audit.service.Auditor)."""

    @property
    def last_seq(self) -> int: ...

    async def records_after(self, seq: int, limit: int) -> list[bytes]: ...

    async def wait_beyond(self, seq: int) -> None: ...


@dataclass(frozen=True)
class FeedBatch:
    records: list[tuple[Record, str]]  # each record with the alert rule it matches ("")
    last_seq: int  # the cursor after this batch: resume with after=last_seq
    missed: int  # records the log no longer held when this client came to read them
    behind: int  # records written after this batch that the client has not read yet
    keepalive: bool


class EventFeed:
    def __init__(self, audit: AuditLog, alert_of: Callable[[Record], str], clock: Clock) -> None:
        self._audit = audit
        self._alert_of = alert_of
        self._clock = clock

    async def follow(
        self, after: int, *, everything: Callable[[], bool], keepalive_s: float
    ) -> AsyncGenerator[FeedBatch, None]:
        """Batches from the record after `after` (-1: from now on), for ever. everything():
        whether the caller may see every record, asked again for each batch (a session
        may end while the stream runs)."""
        newest = self._audit.last_seq
        cursor = newest if after < 0 or after > newest else after
        # At once, so that the client knows where it stands before anything happens (a
        # reconnect then resumes from here, not from "now").
        yield FeedBatch([], cursor, 0, newest - cursor, keepalive=True)
        lagging = newest > cursor
        while True:
            raws = await self._audit.records_after(cursor, BATCH)
            if not raws:
                woke = await first_of(
                    self._audit.wait_beyond(cursor), self._clock.sleep(keepalive_s)
                )
                if woke == 1:
                    yield FeedBatch([], cursor, 0, 0, keepalive=True)
                continue
            for start in range(0, len(raws), BATCH):
                batch, cursor = self._batch(raws[start : start + BATCH], cursor, everything())
                # Also an empty batch when a lagging client has caught up: it learns so
                # even if what it was behind on were records it may not see.
                if batch.records or batch.missed or (lagging and not batch.behind):
                    yield batch
                lagging = batch.behind > 0

    def _batch(self, raws: list[bytes], cursor: int, everything: bool) -> tuple[FeedBatch, int]:
        out: list[tuple[Record, str]] = []
        missed = 0
        for raw in raws:
            try:
                rec = log_format.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.error("event_record_unreadable", after=cursor)
                missed += 1
                cursor += 1
                continue
            if rec.seq <= cursor:
                continue  # already given (a batch read from the store may overlap)
            missed += rec.seq - cursor - 1
            cursor = rec.seq
            alert = self._alert_of(rec)
            if alert or everything:
                out.append((rec, alert))
        behind = max(self._audit.last_seq - cursor, 0)
        return FeedBatch(out, cursor, missed, behind, keepalive=False), cursor
