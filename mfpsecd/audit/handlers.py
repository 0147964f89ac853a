"""io.mfpsecd.Audit handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from mfpsecd.audit import api
from mfpsecd.audit.events import EventType
from mfpsecd.audit.forwarder import Forwarder
from mfpsecd.audit.log_format import Outcome, Record
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.auth.caller import subject_of
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink.calls import CallContext, Last
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


def _entry(r: Record) -> api.AuditEntry:
    s = r.subject
    return api.AuditEntry(
        seq=r.seq,
        time=r.time,
        type=r.type.value,
        outcome=r.outcome.value,
        subject=api.AuditSubject(s.origin, s.user, s.role, s.uid, s.pid, s.address),
        object=r.object,
        details={k: str(v) for k, v in r.details.items()},
    )


_EXPORT_CHUNK = 1000


class AuditHandlers:
    """io.mfpsecd.Audit."""

    def __init__(
        self, auditor: Auditor, forwarders: Callable[[], Sequence[Forwarder]] = tuple
    ) -> None:
        self._auditor = auditor
        self._forwarders = forwarders

    @handles(api.QUERY_AUDIT)
    async def query_audit(self, ctx: CallContext, p: api.AuditQueryParams) -> api.AuditEntries:
        try:
            types = frozenset(EventType(t) for t in p.types)
            outcome = Outcome(p.outcome) if p.outcome else None
        except ValueError:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="types/outcome") from None
        async with self._auditor.event(EventType.AUDIT_READ, subject_of(ctx), "query") as ev:
            records = await self._auditor.query(
                AuditQuery(p.since, p.until, types, p.user, outcome, p.limit)
            )
            ev.details["records"] = len(records)
            ev.succeed()
        return api.AuditEntries([_entry(r) for r in records])

    @handles(api.VERIFY_AUDIT)
    async def verify_audit(self, ctx: CallContext, _: NoParams) -> api.AuditVerdict:
        v = await self._auditor.verify()
        return api.AuditVerdict(
            v.ok, v.records, v.last_seq, v.last_hash.hex(), v.problem, v.at_seq, v.detail
        )

    @handles(api.EXPORT_AUDIT)
    async def export_audit(
        self, ctx: CallContext, _: NoParams
    ) -> AsyncIterator[api.AuditExport | Last[api.AuditExport]]:
        async with self._auditor.event(EventType.AUDIT_READ, subject_of(ctx), "export") as ev:
            lines = [raw.decode() for raw in await self._auditor.export()]
            ev.details["records"] = len(lines)
            ev.succeed()
        for start in range(0, max(len(lines) - _EXPORT_CHUNK, 0), _EXPORT_CHUNK):
            yield api.AuditExport(lines[start : start + _EXPORT_CHUNK])
        tail = len(lines) - (len(lines) - 1) % _EXPORT_CHUNK - 1 if lines else 0
        yield Last(api.AuditExport(lines[tail:]))

    @handles(api.GET_FORWARD_STATUS)
    def get_forward_status(self, ctx: CallContext, _: NoParams) -> api.ForwardStatus:
        out = []
        for f in self._forwarders():
            s = f.status
            backlog = max(self._auditor.last_seq - s.cursor, 0)
            out.append(
                api.Destination(
                    s.name,
                    s.transport,
                    s.format,
                    s.address,
                    s.connected,
                    s.cursor,
                    backlog,
                    s.sent,
                    s.last_sent_at,
                    s.last_error,
                )
            )
        return api.ForwardStatus(out)
