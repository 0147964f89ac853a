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
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from mfpsecd.api import auditlog as core
from mfpsecd.api.auditlog import Detail, EventType, Outcome, Record, Subject
from mfpsecd.api.types import HealthState
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.ports import AuditStore, Clock
from mfpsecd.services.health import HealthRegistry

log = structlog.get_logger("mfpsecd.audit")
COMPONENT = "audit"


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
        return ((not self.since or r.time >= self.since)
                and (not self.until or r.time < self.until)
                and (not self.types or r.type in self.types)
                and (not self.user or r.subject.user == self.user)
                and (self.outcome is None or r.outcome is self.outcome))


class Auditor:
    def __init__(self, store: AuditStore, clock: Clock, health: HealthRegistry) -> None:
        self._store = store
        self._clock = clock
        self._health = health
        self._seq = 0
        self._hash = core.GENESIS
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._verdict: core.Verdict | None = None

    @property
    def last_seq(self) -> int:
        return self._seq

    async def start(self) -> None:
        payloads, repair = await self._store.open()
        verdict = await self._store.verify(payloads)
        self._verdict = verdict
        # Append after what is there whatever the verdict: a broken chain is reported
        # (status, `mfpsec audit verify`), never "repaired" by rewriting history.
        if payloads:
            last = core.decode(payloads[-1])
            self._seq = last.seq
            self._hash = core.chain_hash(bytes.fromhex(last.prev), payloads[-1])
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        if repair is not None:
            log.warning("audit_tail_repaired", offset=repair.offset, bytes_cut=repair.bytes_cut,
                        reason=repair.reason)
            await self.record(EventType.AUDIT_TAIL_REPAIRED, Outcome.SUCCESS, core.DAEMON,
                              "audit log", offset=repair.offset, bytes_cut=repair.bytes_cut,
                              reason=repair.reason)
        await self.record(EventType.AUDIT_START, Outcome.SUCCESS, core.DAEMON, "audit log",
                          records=self._seq, chain="intact" if verdict.ok else "BROKEN")
        if verdict.ok:
            self._health.set(COMPONENT, HealthState.OK, f"{self._seq} records, chain intact")
        else:
            self._health.set(COMPONENT, HealthState.FAILED,
                             f"chain broken at record {verdict.at_seq}: {verdict.problem}")

    def event(self, type_: EventType, subject: Subject, obj: str = ""
              ) -> contextlib.AbstractAsyncContextManager[AuditEvent]:
        return self._event(type_, subject, obj)

    @contextlib.asynccontextmanager
    async def _event(self, type_: EventType, subject: Subject, obj: str
                     ) -> AsyncIterator[AuditEvent]:
        ev = AuditEvent(type_, subject, obj)
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

    async def record(self, type_: EventType, outcome: Outcome, subject: Subject,
                     obj: str = "", **details: Detail) -> int:
        """One record, durable on return. → its sequence number."""
        return await self._submit(AuditEvent(type_, subject, obj, dict(details), outcome))

    async def _submit(self, ev: AuditEvent) -> int:
        if self._writer is None or self._writer.done():
            raise RuntimeError("audit writer is not running")
        now = self._clock.now().isoformat(timespec="microseconds").replace("+00:00", "Z")
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
            seq, chained = self._seq, self._hash
            payloads = []
            for p in batch:
                seq += 1
                rec = Record(seq=seq, time=p.time, type=p.event.type, outcome=p.event.outcome,
                             subject=p.event.subject, object=p.event.object,
                             details=p.event.details, prev=chained.hex())
                encoded = core.canonical(rec)
                chained = core.chain_hash(chained, encoded)
                payloads.append(encoded)
            try:
                await self._store.append(payloads)
            except Exception as exc:
                # Nothing of this batch is acknowledged; numbering continues from what is
                # on disk. The audited operations fail (fail closed).
                err = exc if isinstance(exc, MfpsecError) else MfpsecError(
                    ErrorCode.STATE_UNAVAILABLE, reason=f"audit log: {type(exc).__name__}")
                log.error("audit_write_failed", error=err.code.wire_name, **err.params)
                self._health.set(COMPONENT, HealthState.FAILED, f"write failed: {err.message}")
                for p in batch:
                    p.done.set_exception(MfpsecError(err.code, err.message, **err.params))
                continue
            first = self._seq + 1
            self._seq, self._hash = seq, chained
            for i, p in enumerate(batch):
                if not p.done.done():
                    p.done.set_result(first + i)

    async def query(self, q: AuditQuery) -> list[Record]:
        out = []
        for raw in await self._store.read_all():
            rec = core.decode(raw)
            if q.matches(rec):
                out.append(rec)
        return out[-q.limit:] if q.limit else out

    async def verify(self) -> core.Verdict:
        return await self._store.verify()

    async def export(self) -> list[bytes]:
        """The canonical records as stored: one JSON object per line verifies offline."""
        return await self._store.read_all()

    async def stop(self) -> None:
        with contextlib.suppress(MfpsecError, RuntimeError):
            await self.record(EventType.AUDIT_STOP, Outcome.SUCCESS, core.DAEMON, "audit log",
                              records=self._seq + 1)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._store.close()
