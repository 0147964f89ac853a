"""io.mfpsecd.Audit: read the audit log, verify its chain, export it."""

from __future__ import annotations

from typing import Annotated

import msgspec

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome
from mfpsecd.base.access import Privilege
from mfpsecd.varlink.schema import Interface, Method, NoParams


class AuditSubject(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    origin: str
    user: str
    role: str
    uid: int
    pid: int
    address: str


class AuditEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seq: int
    time: str
    type: str
    outcome: str
    subject: AuditSubject
    object: str
    details: dict[str, str]  # values as text; the export keeps their JSON types


class AuditQueryParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    since: str = ""  # RFC 3339 UTC, inclusive
    until: str = ""  # RFC 3339 UTC, exclusive
    types: list[str] = []  # event types (see the catalogue); empty: all
    user: str = ""
    outcome: str = ""  # "success", "failure" or empty
    limit: Annotated[int, msgspec.Meta(ge=0, le=100000)] = 1000  # the newest N; 0: all


class AuditEntries(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entries: list[AuditEntry]


class AuditVerdict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ok: bool
    records: int
    last_seq: int
    last_hash: str
    problem: str  # "", "modified", "deleted", "inserted", "reordered", "truncated", ...
    at_seq: int
    detail: str


class AuditExport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The canonical records, one JSON object each, as stored: write them one per line and
    # `mfpsec audit verify FILE` checks the chain without the daemon.
    lines: list[str]


class Destination(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    transport: str  # "tls", "tcp", "udp"
    format: str  # "cef", "leef"
    address: str
    connected: bool
    cursor: int  # the last record the SIEM acknowledged
    backlog: int  # records not yet forwarded
    sent: int  # since the daemon started
    last_sent_at: str
    last_error: str


class ForwardStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    destinations: list[Destination]


EVENT_TYPES = [t.value for t in EventType]
OUTCOMES = [o.value for o in Outcome]

QUERY_AUDIT = Method(
    name="QueryAudit",
    doc="Records matching the filters, oldest first (the newest `limit`).",
    params=AuditQueryParams,
    result=AuditEntries,
    requires=Privilege.AUDIT_READ,
)


VERIFY_AUDIT = Method(
    name="VerifyAudit",
    doc="Walk the whole hash chain; say where and how it breaks, if it does.",
    params=NoParams,
    result=AuditVerdict,
    requires=Privilege.AUDIT_READ,
)


EXPORT_AUDIT = Method(
    name="ExportAudit",
    doc=(
        "Every record in canonical form, for offline verification and archiving,\n"
        "in replies of up to 1000 lines; the last line of the last reply is the\n"
        "signed checkpoint. Exported records count as safe for the capacity policy.\n"
        "Call with more=true."
    ),
    params=NoParams,
    result=AuditExport,
    requires=Privilege.AUDIT_READ,
    streams=True,
)


GET_FORWARD_STATUS = Method(
    name="GetForwardStatus",
    doc="Each SIEM destination: connected, cursor, backlog, last error.",
    params=NoParams,
    result=ForwardStatus,
    requires=Privilege.AUDIT_READ,
)


AUDIT = Interface(
    name="io.mfpsecd.Audit",
    module=__name__,
    doc=(
        "The tamper-evident audit log. Reading it is itself audited; nothing can change\n"
        "or delete a record through this interface."
    ),
    methods=(
        QUERY_AUDIT,
        VERIFY_AUDIT,
        EXPORT_AUDIT,
        GET_FORWARD_STATUS,
    ),
)
