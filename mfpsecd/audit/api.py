"""io.mfpsecd.Audit: read the audit log, verify its chain, export it."""

from __future__ import annotations

from typing import Annotated

import msgspec

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome
from mfpsecd.base.access import Privilege
from mfpsecd.varlink.schema import Interface, Method, NoParams


class AuditSubject(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who did it: always where it came from; the user and role when one was logged in."""

    # "daemon", "panel", "cli", "system" (root or the daemon's uid), "network" (through a
    # front-end), "local" (a local peer the IPC socket refused)
    origin: str
    user: str  # the logged-in account; "" when none was (the daemon's own, a failed login)
    role: str  # that account's role; "" when none was logged in
    uid: int  # the caller's uid; -1 when there is none (e.g. the daemon's own records)
    pid: int  # the caller's pid; -1 when there is none (e.g. the daemon's own records)
    # The network client's IP address (a login through a front-end), or the host:port of a
    # peer a channel failed with (session.failure); "" otherwise.
    address: str


class AuditEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One audit record."""

    seq: int  # its sequence number: 1 for the log's first record, no gaps
    time: str  # RFC 3339 UTC, with microseconds
    type: str  # the event type, e.g. "auth.login" (README's event catalogue)
    outcome: str  # "success" or "failure"
    subject: AuditSubject  # who did it
    # What it is about (an account, a name as typed at a login, a path, ...); untrusted
    # text: escape it to show it.
    object: str
    details: dict[str, str]  # values as text; the export keeps their JSON types


class AuditQueryParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    since: str = ""  # RFC 3339 UTC, inclusive
    until: str = ""  # RFC 3339 UTC, exclusive
    types: list[str] = []  # event types (see the catalogue); empty: all
    # Only what this account did (subject.user, exact); "": anyone. A failed login names
    # its account as the object, not the user.
    user: str = ""
    outcome: str = ""  # "success", "failure" or empty
    limit: Annotated[int, msgspec.Meta(ge=0, le=100000)] = 1000  # the newest N; 0: all


class AuditEntries(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entries: list[AuditEntry]  # oldest first


class AuditVerdict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ok: bool  # the chain is intact and agrees with the latest signed checkpoint, if any
    # Records verified (before the break, if any), from the oldest the log still holds
    # (the capacity and retention policies may have dropped older ones).
    records: int
    last_seq: int  # the last record verified
    last_hash: str  # hex SHA-256 chain hash up to last_seq
    problem: str  # "", "modified", "deleted", "inserted", "reordered", "truncated", ...
    at_seq: int  # where it breaks: the first bad record, or the one expected; 0 when ok
    detail: str  # what was found, for a person; "" when ok


class AuditExport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The canonical records, one JSON object each, as stored: write them one per line and
    # `mfpsec audit verify FILE` checks the chain without the daemon.
    lines: list[str]


class Destination(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One SIEM the audit log is forwarded to ([[audit.forward]] in the configuration)."""

    name: str  # as configured
    transport: str  # "tls", "tcp", "udp"
    format: str  # "cef", "leef"
    address: str  # host:port, as configured
    connected: bool  # a connection is up now (udp: the socket is open)
    cursor: int  # the last record the SIEM acknowledged
    backlog: int  # records not yet forwarded
    sent: int  # since the daemon started
    last_sent_at: str  # RFC 3339 UTC of the last batch sent; "" when none since the daemon started
    # Why the connection last failed or ended; "" when it has not (tcp and tls clear it on
    # reconnecting).
    last_error: str


class ForwardStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    destinations: list[Destination]  # as configured; empty when none is


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
