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
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from mfpsecd.api import auditlog as core
from mfpsecd.api.auditlog import Detail, EventType, Outcome, Record, Subject
from mfpsecd.api.types import HealthState
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.ports import AuditStore, Clock, StateConnection, StateStore
from mfpsecd.services.health import HealthRegistry

log = structlog.get_logger("mfpsecd.audit")
COMPONENT = "audit"
CHECKPOINT_EVERY = 256  # records between signed checkpoints (also one per period and at stop)

# digest → (DER signature, SubjectPublicKeyInfo DER), or None when no key can sign now.
Signer = Callable[[bytes], Awaitable[tuple[bytes, bytes] | None]]


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
    def __init__(self, store: AuditStore, clock: Clock, health: HealthRegistry,
                 state: StateStore | None = None, *,
                 checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self._store = store
        self._clock = clock
        self._health = health
        self._state = state
        self._checkpoint_every = checkpoint_every
        self._signer: Signer | None = None
        self._last_checkpoint = 0
        self._checkpointing: asyncio.Task[None] | None = None
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
        cp = await self.latest_checkpoint()
        if verdict.ok and cp is not None and verdict.last_seq < cp.seq:
            # Cut while the daemon was down, at a frame boundary: only the checkpoint knows.
            verdict = core.Verdict(False, verdict.records, verdict.last_seq, verdict.last_hash,
                                   "truncated", verdict.last_seq + 1,
                                   f"the log ends at record {verdict.last_seq}; the checkpoint "
                                   f"of {cp.time} vouches for {cp.seq}")
        if cp is not None:
            self._last_checkpoint = cp.seq
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
                          records=self._seq,
                          chain="intact" if verdict.ok else f"BROKEN: {verdict.problem} at "
                          f"record {verdict.at_seq}")
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
        now = _utc(self._clock)
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
            if (self._state is not None and seq - self._last_checkpoint >= self._checkpoint_every
                    and (self._checkpointing is None or self._checkpointing.done())):
                self._checkpointing = asyncio.get_running_loop().create_task(
                    self._checkpoint_quietly())

    # ---------------------------------------------------------------- checkpoints

    def set_signer(self, signer: Signer) -> None:
        """The device identity key, once the key chain is up."""
        self._signer = signer

    async def checkpoint(self, *, record_event: bool = True) -> core.SignedCheckpoint | None:
        """Sign the current end of the chain and keep it outside the log (state store)."""
        if self._state is None or self._seq == 0:
            return None
        seq, chained = self._seq, self._hash
        signature = public_pem = ""
        if self._signer is not None:
            try:
                signed = await self._signer(core.checkpoint_digest(seq, chained))
            except MfpsecError as exc:
                log.warning("audit_checkpoint_unsigned", error=exc.code.wire_name)
                signed = None
            if signed is not None:
                signature = signed[0].hex()
                public_pem = _pem(signed[1])
        cp = core.SignedCheckpoint(seq=seq, hash=chained.hex(), time=_utc(self._clock),
                                   signature=signature, public_key=public_pem)

        def tx(conn: StateConnection) -> None:
            conn.execute("INSERT OR REPLACE INTO audit_checkpoints (seq, hash, time, signature, "
                         "public_key) VALUES (?, ?, ?, ?, ?)",
                         (cp.seq, cp.hash, cp.time, cp.signature, cp.public_key))

        await self._state.run(tx)
        self._last_checkpoint = seq
        if record_event:
            await self.record(EventType.AUDIT_CHECKPOINT, Outcome.SUCCESS, core.DAEMON,
                              "audit log", covers=seq, signed=bool(signature))
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

    async def latest_checkpoint(self) -> core.SignedCheckpoint | None:
        if self._state is None:
            return None

        def tx(conn: StateConnection) -> tuple[object, ...] | None:
            return conn.execute("SELECT seq, hash, time, signature, public_key FROM "
                                "audit_checkpoints ORDER BY seq DESC LIMIT 1").fetchone()

        row = await self._state.run(tx)
        if row is None:
            return None
        seq, chained, when, signature, public = (str(x) for x in row)
        return core.SignedCheckpoint(int(seq), chained, when, signature, public)

    async def query(self, q: AuditQuery) -> list[Record]:
        out = []
        for raw in await self._store.read_all():
            rec = core.decode(raw)
            if q.matches(rec):
                out.append(rec)
        return out[-q.limit:] if q.limit else out

    async def verify(self) -> core.Verdict:
        """The chain, and the log against the latest signed checkpoint (truncation)."""
        records = await self._store.read_all()
        verdict = await self._store.verify(records)
        cp = await self.latest_checkpoint()
        if not verdict.ok or cp is None:
            return verdict
        if verdict.last_seq < cp.seq:
            return core.Verdict(False, verdict.records, verdict.last_seq, verdict.last_hash,
                                "truncated", verdict.last_seq + 1,
                                f"the log ends at record {verdict.last_seq}; the checkpoint "
                                f"of {cp.time} vouches for {cp.seq}")
        upto = await self._store.verify(records[:cp.seq])
        if upto.last_hash.hex() != cp.hash:
            return core.Verdict(False, verdict.records, verdict.last_seq, verdict.last_hash,
                                "modified", cp.seq, "the chain differs from the checkpoint")
        if cp.signature and not core.signature_ok(cp):
            return core.Verdict(False, verdict.records, verdict.last_seq, verdict.last_hash,
                                "checkpoint forged", cp.seq, "the checkpoint signature is bad")
        return verdict

    async def export(self) -> list[bytes]:
        """The canonical records as stored and, last, the latest signed checkpoint: the
        lines verify offline, truncation included."""
        cp = await self.checkpoint() or await self.latest_checkpoint()  # vouch for now
        lines = await self._store.read_all()
        if cp is not None:
            lines.append(core.checkpoint_line(cp))
        return lines

    async def stop(self) -> None:
        with contextlib.suppress(MfpsecError, RuntimeError):
            await self.record(EventType.AUDIT_STOP, Outcome.SUCCESS, core.DAEMON, "audit log",
                              records=self._seq + 1)
            if self._checkpointing is not None:
                await self._checkpointing
            await self.checkpoint(record_event=False)  # covers the very last record
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._store.close()


def _utc(clock: Clock) -> str:
    return clock.now().isoformat(timespec="microseconds").replace("+00:00", "Z")


def _pem(spki_der: bytes) -> str:
    body = base64.encodebytes(spki_der).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"
