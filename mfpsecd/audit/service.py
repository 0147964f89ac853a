"""The one audit API every service uses (L-1, L-2, FAU_GEN.1/2).

    async with auditor.event(EventType.KEYS_BACKUP, subject, obj=target) as ev:
        ...                      # the audited operation
        ev.details["path"] = ...
        ev.succeed()             # without this, the record says FAILURE

An event is on stable storage before the `async with` block returns, so an operation is
never reported successful before its record is durable. Records are numbered and chained
by one writer task in the order they are written; concurrent events are written and
flushed together (group commit), each waiting only for the flush that carries it.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import itertools
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import structlog

from mfpsecd.audit import log_format
from mfpsecd.audit.capacity import COMPONENT, Capacity
from mfpsecd.audit.checkpoints import Checkpoints, Signer, Trust, truncated
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Detail, Outcome, Record, Subject
from mfpsecd.audit.ports import AuditStore
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.config.schema import AuditFullPolicy
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import ComponentHealth, HealthRegistry, HealthState
from mfpsecd.base.state import StateStore

log = structlog.get_logger("mfpsecd.audit")
CHECKPOINT_EVERY = 256
RECENT = 10000  # records between signed checkpoints (also one per period and at stop)


@dataclass
class AuditEvent:
    type: EventType
    subject: Subject
    object: str
    details: dict[str, Detail] = field(default_factory=dict)
    outcome: Outcome = Outcome.FAILURE

    def succeed(self) -> None:
        self.outcome = Outcome.SUCCESS


@dataclass
class _Pending:
    time: str
    event: AuditEvent
    done: asyncio.Future[int]


@dataclass(frozen=True)
class AuditQuery:
    since: str = ""  # RFC 3339, inclusive
    until: str = ""  # RFC 3339, exclusive
    types: frozenset[EventType] = frozenset()
    user: str = ""
    outcome: Outcome | None = None
    limit: int = 1000

    def matches(self, r: Record) -> bool:
        return (
            (not self.since or r.time >= self.since)
            and (not self.until or r.time < self.until)
            and (not self.types or r.type in self.types)
            and (not self.user or r.subject.user == self.user)
            and (self.outcome is None or r.outcome is self.outcome)
        )


_WRITER_MARKS = (b'"type":"audit.start"', b'"type":"audit.tail_repaired"')


def _writer_marks(payloads: list[bytes]) -> list[tuple[int, int]]:
    """Where each earlier process's records begin: its first record names its pid."""
    marks = []
    for raw in payloads:
        if any(m in raw for m in _WRITER_MARKS):
            r = log_format.decode(raw)
            pid = r.details.get("pid")
            marks.append((r.seq, pid if isinstance(pid, int) and pid > 0 else -1))
    return marks


class Auditor:
    def __init__(
        self,
        store: AuditStore,
        clock: Clock,
        health: HealthRegistry,
        state: StateStore | None = None,
        *,
        checkpoint_every: int = CHECKPOINT_EVERY,
        full_policy: AuditFullPolicy = AuditFullPolicy.OVERWRITE_EXPORTED,
        retention_days: int = 0,
        writer_pid: int = -1,
    ) -> None:
        self._store = store
        # Named in this process's first record, so a forwarder replaying the log later
        # can give each record the PROCID of the process that wrote it (L-3).
        self.writer_pid = writer_pid
        # (first seq, pid) of each process that opened the log, oldest first; -1: unnamed
        self._writers: list[tuple[int, int]] = []
        self._capacity = Capacity(
            store, clock, health, state, policy=full_policy, retention_days=retention_days
        )
        self._capacity.set_note(self._internal)
        # The newest records, for forwarders that keep up (older ones come from the store).
        self._recent: collections.deque[bytes] = collections.deque(maxlen=RECENT)
        self._appended = asyncio.Event()
        self._listeners: list[Callable[[list[Record]], None]] = []
        self._clock = clock
        self._health = health
        self._state = state
        self._checkpoint_every = checkpoint_every
        self._checkpoints = Checkpoints(state, clock) if state is not None else None
        self._last_checkpoint = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self._seq = 0
        self._hash = log_format.GENESIS
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._write_failed = False  # since a batch failed for another reason than "full"
        self._before_write_failure: ComponentHealth | None = None  # what status said then
        self._verdict: log_format.Verdict | None = None
        self._integrity_reported: tuple[str, int] | None = None

    @property
    def last_seq(self) -> int:
        return self._seq

    def writer_of(self, seq: int) -> int:
        """The pid of the process that wrote record seq, -1 when it named none."""
        i = bisect.bisect_right(self._writers, (seq, sys.maxsize))
        return self._writers[i - 1][1] if i else -1

    async def start(self) -> None:
        payloads, repair = await self._store.open()
        await self._capacity.load()
        verdict = await self._store.verify(
            payloads, first_seq=self._capacity.base_seq, first_prev=self._capacity.base_prev
        )
        cp = await self.latest_checkpoint()
        if verdict.ok and cp is not None and verdict.last_seq < cp.seq:
            verdict = truncated(verdict, cp)
        if cp is not None:
            self._last_checkpoint = cp.seq
        self._verdict = verdict
        # Append after what is there whatever the verdict: a broken chain is reported
        # (status, `mfpsec audit verify`), never "repaired" by rewriting history.
        if verdict.ok:
            # Forwarders catching up after a restart read from memory, not the whole log.
            self._recent.extend(payloads[-RECENT:])
        if payloads:
            last = log_format.decode(payloads[-1])
            self._seq = last.seq
            self._hash = log_format.chain_hash(bytes.fromhex(last.prev), payloads[-1])
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        writer: dict[str, Detail] = {"pid": self.writer_pid} if self.writer_pid >= 0 else {}
        self._writers = [*_writer_marks(payloads), (self._seq + 1, self.writer_pid)]
        if repair is not None:
            log.warning(
                "audit_tail_repaired",
                offset=repair.offset,
                bytes_cut=repair.bytes_cut,
                reason=repair.reason,
            )
            await self.record(
                EventType.AUDIT_TAIL_REPAIRED,
                Outcome.SUCCESS,
                log_format.DAEMON,
                "audit log",
                offset=repair.offset,
                bytes_cut=repair.bytes_cut,
                reason=repair.reason,
                **writer,
            )
        await self.record(
            EventType.AUDIT_START,
            Outcome.SUCCESS,
            log_format.DAEMON,
            "audit log",
            records=self._seq,
            chain="intact"
            if verdict.ok
            else f"BROKEN: {verdict.problem} at record {verdict.at_seq}",
            **writer,
        )
        if verdict.ok:
            self._health.set(COMPONENT, HealthState.OK, f"{self._seq} records, chain intact")
        else:
            self._health.set(
                COMPONENT,
                HealthState.FAILED,
                f"chain broken at record {verdict.at_seq}: {verdict.problem}",
            )
            await self._integrity_failed(verdict.problem, verdict.at_seq, verdict.detail)

    def event(
        self, type_: EventType, subject: Subject, obj: str = ""
    ) -> contextlib.AbstractAsyncContextManager[AuditEvent]:
        return self._event(type_, subject, obj)

    @contextlib.asynccontextmanager
    async def _event(
        self, type_: EventType, subject: Subject, obj: str
    ) -> AsyncIterator[AuditEvent]:
        if self._capacity.refuses(type_):
            raise self._capacity.full_error()  # L-5: not even attempted
        ev = AuditEvent(type_, subject, obj)
        if self._capacity.read_while_full(type_):
            yield ev
            return
        try:
            yield ev
        except MfpsecError as exc:
            ev.outcome = Outcome.FAILURE
            ev.details["error"] = exc.code.wire_name
            await self._submit(ev)
            raise
        except BaseException:
            ev.outcome = Outcome.FAILURE
            ev.details["error"] = "internal"
            await self._submit(ev)
            raise
        await self._submit(ev)

    async def record(
        self, type_: EventType, outcome: Outcome, subject: Subject, obj: str = "", **details: Detail
    ) -> int:
        """One record, durable on return. → its sequence number."""
        return await self._submit(AuditEvent(type_, subject, obj, dict(details), outcome))

    async def _submit(self, ev: AuditEvent) -> int:
        if self._writer is None or self._writer.done():
            raise RuntimeError("audit writer is not running")
        now = rfc3339(self._clock, "microseconds")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(now, ev, done))
        self._wake.set()
        return await done

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            payloads, chained = self._chained(batch)
            try:
                own = all(p.event.type.value.startswith("audit.") for p in batch)
                await self._capacity.append(payloads, own=own)
            except Exception as exc:
                self._failed(batch, exc)
                continue
            self._acknowledge(batch, payloads, chained)

    def _chained(self, batch: list[_Pending]) -> tuple[list[bytes], bytes]:
        """The batch numbered and chained after the last durable record."""
        seq, chained = self._seq, self._hash
        payloads = []
        for p in batch:
            seq += 1
            rec = Record(
                seq=seq,
                time=p.time,
                type=p.event.type,
                outcome=p.event.outcome,
                subject=p.event.subject,
                object=p.event.object,
                details=p.event.details,
                prev=chained.hex(),
            )
            encoded = log_format.canonical(rec)
            chained = log_format.chain_hash(chained, encoded)
            payloads.append(encoded)
        return payloads, chained

    def _failed(self, batch: list[_Pending], exc: Exception) -> None:
        """Nothing of this batch is acknowledged; numbering continues from what is on
        disk. The audited operations fail (fail closed)."""
        err = (
            exc
            if isinstance(exc, MfpsecError)
            else MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason=f"audit log: {type(exc).__name__}")
        )
        log.error("audit_write_failed", error=err.code.wire_name, **err.params)
        before = self._health.get(COMPONENT)
        reason = err.params.get("reason")
        self._health.set(
            COMPONENT,
            HealthState.FAILED,
            f"write failed: {reason}" if reason else f"write failed: {err.message}",
        )
        # A full log recovers through its capacity policy; anything else (an I/O error,
        # a full file system) once a batch is durable again, back to what status said
        # before (a broken chain stays reported).
        if err.code is not ErrorCode.AUDIT_FULL and not self._write_failed:
            self._write_failed = True
            self._before_write_failure = before
        for p in batch:
            p.done.set_exception(MfpsecError(err.code, err.message, **err.params))

    def _acknowledge(self, batch: list[_Pending], payloads: list[bytes], chained: bytes) -> None:
        first = self._seq + 1
        self._seq, self._hash = first + len(batch) - 1, chained
        if self._write_failed:
            self._write_failed = False
            before, self._before_write_failure = self._before_write_failure, None
            if before is not None and before.state is not HealthState.OK:
                self._health.set(COMPONENT, before.state, before.detail)
            elif not self._capacity.refusing:
                self._health.set(COMPONENT, HealthState.OK, f"writing again at record {first}")
        self._recent.extend(payloads)
        self._appended.set()
        self._appended = asyncio.Event()
        if self._listeners:
            decoded = [log_format.decode(p) for p in payloads]
            for listener in self._listeners:
                listener(decoded)
        for i, p in enumerate(batch):
            if not p.done.done():
                p.done.set_result(first + i)
        if (
            self._state is not None
            and self._seq - self._last_checkpoint >= self._checkpoint_every
            and (self._checkpointing is None or self._checkpointing.done())
        ):
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint_quietly())

    def _internal(self, type_: EventType, outcome: Outcome, **details: Detail) -> None:
        """Queue an event from inside the writer (which cannot wait on itself)."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: f.exception())  # nobody waits: do not warn
        self._pending.append(
            _Pending(
                rfc3339(self._clock, "microseconds"),
                AuditEvent(type_, log_format.DAEMON, "audit log", dict(details), outcome),
                done,
            )
        )
        self._wake.set()

    async def apply_retention(self) -> None:
        """Drop exported segments whose newest record is older than the retention."""
        await self._capacity.apply_retention()

    async def mark_exported(self, through: int) -> None:
        """Records up to here are safe elsewhere (an export, a SIEM that acknowledged)."""
        await self._capacity.mark_exported(through)

    # ---------------------------------------------------------------- checkpoints

    def set_signer(self, signer: Signer) -> None:
        """The device identity key, once the key chain is up."""
        if self._checkpoints is not None:
            self._checkpoints.set_signer(signer)

    def set_trust(self, fingerprints: Trust) -> None:
        """The device's identity keys (now and earlier), once the key chain is up."""
        if self._checkpoints is not None:
            self._checkpoints.set_trust(fingerprints)

    async def checkpoint(self, *, record_event: bool = True) -> log_format.SignedCheckpoint | None:
        """Sign the current end of the chain and keep it outside the log (state store)."""
        if self._checkpoints is None or self._seq == 0:
            return None
        seq = self._seq
        cp = await self._checkpoints.keep(seq, self._hash)
        if cp is None:
            return None
        self._last_checkpoint = seq
        if record_event:
            await self.record(
                EventType.AUDIT_CHECKPOINT,
                Outcome.SUCCESS,
                log_format.DAEMON,
                "audit log",
                covers=seq,
                signed=True,
            )
        return cp

    async def _checkpoint_quietly(self) -> None:
        try:
            await self.checkpoint()
        except MfpsecError as exc:
            log.error("audit_checkpoint_failed", error=exc.code.wire_name, **exc.params)

    async def run_checkpoints(self, period_s: float) -> None:
        """Supervised task: a checkpoint every period when records were added."""
        while True:
            await self._clock.sleep(period_s)
            if self._seq > self._last_checkpoint + 1:  # more than our own last event
                await self.checkpoint()
            await self.apply_retention()

    async def latest_checkpoint(self) -> log_format.SignedCheckpoint | None:
        return None if self._checkpoints is None else await self._checkpoints.latest()

    def add_listener(self, listener: Callable[[list[Record]], None]) -> None:
        """Called with each batch once it is durable (notifications). Must not block."""
        self._listeners.append(listener)

    # ---------------------------------------------------------------- for forwarders

    async def records_after(self, seq: int, limit: int) -> list[bytes]:
        """Durable records with sequence numbers above seq, in order: up to limit from
        memory, more in one go when they must come from the store."""
        if seq >= self._seq:
            return []
        oldest_recent = self._seq - len(self._recent) + 1
        if seq + 1 >= oldest_recent:
            start = seq + 1 - oldest_recent
            return list(itertools.islice(self._recent, start, start + limit))
        # Older than what is in memory: one read of the log serves a large batch, so a
        # long backlog costs a read per RECENT records, not per `limit`.
        wanted = max(limit, RECENT)
        out = []
        for raw in await self._store.read_all():
            h = log_format.head(raw)
            if h is not None and h[0] > seq:
                out.append(raw)
                if len(out) >= wanted:
                    break
        return out

    async def wait_beyond(self, seq: int) -> None:
        """Return once a record above seq is durable."""
        while self._seq <= seq:
            await self._appended.wait()

    @property
    def oldest_seq(self) -> int:
        return self._capacity.base_seq

    async def query(self, q: AuditQuery) -> list[Record]:
        out = []
        for raw in await self._store.read_all():
            rec = log_format.decode(raw)
            if q.matches(rec):
                out.append(rec)
        return out[-q.limit :] if q.limit else out

    async def verify(self) -> log_format.Verdict:
        """The chain, and the log against the latest signed checkpoint (truncation). The
        `audit` component shows the outcome of the latest verification, not only the
        start-up one (while the log is full, it keeps saying that)."""
        verdict = await self._verify()
        if not verdict.ok:
            log.error("audit_chain_broken", problem=verdict.problem, at=verdict.at_seq)
            self._health.set(
                COMPONENT,
                HealthState.FAILED,
                f"chain broken at record {verdict.at_seq}: {verdict.problem}"
                + (f" ({verdict.detail})" if verdict.detail else ""),
            )
            await self._integrity_failed(verdict.problem, verdict.at_seq, verdict.detail)
        elif not self._capacity.refusing:
            self._health.set(
                COMPONENT,
                HealthState.OK,
                f"{verdict.records} records, chain intact (verified {rfc3339(self._clock)})",
            )
        return verdict

    async def _verify(self) -> log_format.Verdict:
        records = await self._store.read_all()
        verdict = await self._store.verify(
            records, first_seq=self._capacity.base_seq, first_prev=self._capacity.base_prev
        )
        book = self._checkpoints
        cp = None if book is None else await book.latest()
        if not verdict.ok or book is None or cp is None:
            return verdict
        if verdict.last_seq < cp.seq:
            return truncated(verdict, cp)
        upto = await self._store.verify(
            records[: cp.seq - self._capacity.base_seq + 1],
            first_seq=self._capacity.base_seq,
            first_prev=self._capacity.base_prev,
        )
        if upto.last_hash.hex() != cp.hash:
            return log_format.Verdict(
                False,
                verdict.records,
                verdict.last_seq,
                verdict.last_hash,
                "modified",
                cp.seq,
                "the chain differs from the checkpoint",
            )
        problem, detail = await book.problem(cp)
        if problem:
            return log_format.Verdict(
                False, verdict.records, verdict.last_seq, verdict.last_hash, problem, cp.seq, detail
            )
        return verdict

    async def check_checkpoint(self) -> bool:
        """At start, once the keys are up: can the newest checkpoint vouch for the log?
        Status says so when it cannot (before any new checkpoint could hide it)."""
        book = self._checkpoints
        cp = None if book is None else await book.latest()
        if book is None or cp is None:
            return True
        problem, detail = await book.problem(cp)
        if problem:
            log.error("audit_checkpoint_untrusted", problem=problem, seq=cp.seq)
            self._health.set(
                COMPONENT, HealthState.FAILED, f"checkpoint of record {cp.seq}: {problem}: {detail}"
            )
            await self._integrity_failed(problem, cp.seq, detail)
            return False
        return True

    async def _integrity_failed(self, problem: str, at_seq: int, detail: str) -> None:
        """An audit.integrity record (the alert rules take it), once per distinct problem:
        a verify repeated by a person or a timer adds no noise."""
        if self._integrity_reported == (problem, at_seq):
            return
        self._integrity_reported = (problem, at_seq)
        with contextlib.suppress(MfpsecError):  # full under `refuse`: status still says it
            await self.record(
                EventType.AUDIT_INTEGRITY,
                Outcome.FAILURE,
                log_format.DAEMON,
                "audit log",
                problem=problem,
                at=at_seq,
                detail=detail,
            )

    async def export(self) -> list[bytes]:
        """The canonical records as stored and, last, the latest signed checkpoint: the
        lines verify offline, truncation included."""
        cp = await self.checkpoint() or await self.latest_checkpoint()  # vouch for now
        lines = await self._store.read_all()
        if lines:
            last = log_format.head(lines[-1])
            if last is not None:
                await self.mark_exported(last[0])
        if cp is not None:
            lines.append(log_format.checkpoint_line(cp))
        return lines

    async def stop(self, *, checkpoint: bool = True) -> None:
        """checkpoint=False where the keys never opened (a failed self-test): an unsigned
        checkpoint would vouch for nothing and hide the signed one before it."""
        with contextlib.suppress(MfpsecError, RuntimeError):
            await self.record(
                EventType.AUDIT_STOP,
                Outcome.SUCCESS,
                log_format.DAEMON,
                "audit log",
                records=self._seq + 1,
            )
            if self._checkpointing is not None:
                await self._checkpointing
            if checkpoint:
                await self.checkpoint(record_event=False)  # covers the very last record
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._store.close()
