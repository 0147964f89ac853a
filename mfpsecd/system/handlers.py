"""io.mfpsecd.System handlers: the status the panel polls and watches, the posture, and the
event stream."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import msgspec

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Record
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.caller import subject_of
from mfpsecd.auth.sessions import seat_of
from mfpsecd.base.access import Privilege
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.system import api, report_document
from mfpsecd.system.events import EventFeed
from mfpsecd.system.posture import PostureBook
from mfpsecd.system.report import PostureReporter
from mfpsecd.system.status import StatusService
from mfpsecd.varlink.calls import CallContext, Last
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams

_encoder = msgspec.json.Encoder()


class StatusReply:
    """GetStatus, pre-encoded: the Status JSON is encoded once per health generation and
    only the uptime is spliced in per call (encoding the whole struct was most of the
    handler's cost on the panel's polling path). The bytes are exactly what encoding
    the Status would give; a unit test holds them to that."""

    _FIELD = b'"uptime_seconds":'

    def __init__(self, status: StatusService) -> None:
        self._status = status
        self._cached: tuple[int, bytes, bytes] | None = None

    def _parts(self) -> tuple[int, bytes, bytes]:
        generation, template = self._status.snapshot()
        cached = self._cached
        if cached is None or cached[0] != generation:
            data = _encoder.encode(template)
            at = data.index(self._FIELD + b"0.0") + len(self._FIELD)
            cached = self._cached = (generation, data[:at], data[at + 3 :])
        return cached

    def encoded(self) -> msgspec.Raw:
        _, head, tail = self._parts()
        return msgspec.Raw(head + repr(self._status.uptime()).encode() + tail)

    def message(self) -> bytes:
        """The whole reply message, NUL included (the IPC server's fast path)."""
        _, head, tail = self._parts()
        return b"".join(
            (b'{"parameters":', head, repr(self._status.uptime()).encode(), tail, b"}\0")
        )


_encoder = msgspec.json.Encoder()


# The exact bytes our clients send for GetStatus (wire.encode_call without parameters).
GET_STATUS_CALL = b'{"method":"io.mfpsecd.System.GetStatus"}'


def fast_replies(status: StatusService) -> dict[bytes, tuple[str, Callable[[], bytes]]]:
    """Calls answered from the read callback without parsing: the panel polls GetStatus,
    so its canonical message maps straight to the pre-encoded reply. The server still
    checks the method's privilege; any other spelling of the call takes the normal path.
    """
    return {GET_STATUS_CALL: ("io.mfpsecd.System.GetStatus", StatusReply(status).message)}


@dataclass(frozen=True)
class SecurityViews:
    """What GetPosture and WatchEvents answer from: the daemon's services, absent after a
    failed self-test and in the IPC layer's tests (their routes are then removed)."""

    posture: PostureBook
    events: EventFeed
    auditor: Auditor
    clock: Clock
    reporter: PostureReporter


class SystemHandlers:
    """io.mfpsecd.System. Plain methods answer from the read callback (see the IPC
    server); only what waits for something is a coroutine or an async generator."""

    def __init__(self, status: StatusService, views: SecurityViews | None = None) -> None:
        self._status = status
        self._reply = StatusReply(status)
        self._views = views

    @handles(api.GET_STATUS)
    def get_status(self, ctx: CallContext, _: NoParams) -> msgspec.Raw:
        return self._reply.encoded()

    @handles(api.WATCH_STATUS)
    async def watch_status(
        self, ctx: CallContext, _: NoParams
    ) -> AsyncIterator[api.Status | Last[api.Status]]:
        async for s in self._status.watch():
            if s.state is api.DaemonState.STOPPING:
                yield Last(s)  # the stream's proper end: the daemon is going away
                return
            yield s

    @handles(api.GET_POSTURE)
    async def get_posture(self, ctx: CallContext, _: NoParams) -> api.Posture:
        views = self._security_views()
        entries = await views.posture.current()
        return api.Posture(
            [
                api.PostureItem(
                    e.item.id.value,
                    e.title,
                    e.item.state,
                    e.item.setting,
                    e.item.detail,
                    e.since,
                )
                for e in entries
            ],
            rfc3339(views.clock),
        )

    @handles(api.GET_POSTURE_REPORT)
    async def get_posture_report(self, ctx: CallContext, _: NoParams) -> api.PostureReport:
        doc = await self._security_views().reporter.issue()
        data = report_document.encode_document(doc)
        return api.PostureReport(
            data.decode(), doc.report.level, doc.report.level_text, hashlib.sha256(data).hexdigest()
        )

    @handles(api.VERIFY_POSTURE_REPORT)
    async def verify_posture_report(
        self, ctx: CallContext, p: api.VerifyReportParams
    ) -> api.ReportVerdict:
        doc, identity = await self._security_views().reporter.verify(p.document)
        return api.ReportVerdict(
            identity.fingerprint,
            not identity.replaced_at,
            doc.report.at,
            doc.report.level_text,
            hashlib.sha256(report_document.encode_document(doc)).hexdigest(),
        )

    @handles(api.WATCH_EVENTS)
    async def watch_events(
        self, ctx: CallContext, p: api.WatchEventsParams
    ) -> AsyncIterator[api.Events]:
        views = self._security_views()
        seat = seat_of(ctx.seat)

        def everything() -> bool:
            return Privilege.AUDIT_READ in seat.grants

        if everything():  # the whole log, as QueryAudit and ExportAudit are: audited
            await views.auditor.record(
                EventType.AUDIT_READ, Outcome.SUCCESS, subject_of(ctx), "events", after=p.after
            )
        async for b in views.events.follow(
            p.after, everything=everything, keepalive_s=p.keepalive_s
        ):
            full = everything()
            yield api.Events(
                [_event(r, alert, full) for r, alert in b.records],
                b.last_seq,
                b.missed,
                b.behind,
                b.keepalive,
            )

    def _security_views(self) -> SecurityViews:
        # Without them (a failed self-test, the IPC layer's tests) the table has no
        # GetPosture or WatchEvents route: see daemon.handlers.
        assert self._views is not None
        return self._views


def _event(r: Record, alert: str, full: bool) -> api.Event:
    return api.Event(
        r.seq,
        r.time,
        r.type.value,
        r.outcome.value,
        alert,
        r.object,
        r.subject.user if full else "",
        {k: _text(v) for k, v in r.details.items()} if full else {},
    )


def _text(v: str | int | float | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
