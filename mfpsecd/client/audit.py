"""Typed calls of io.mfpsecd.Audit."""

from __future__ import annotations

import msgspec

from mfpsecd.api import audit
from mfpsecd.varlink.client import Connection

_entries = msgspec.json.Decoder(audit.AuditEntries)
_verdict = msgspec.json.Decoder(audit.AuditVerdict)
_export = msgspec.json.Decoder(audit.AuditExport)
_forward = msgspec.json.Decoder(audit.ForwardStatus)
_IFACE = "io.mfpsecd.Audit."


class AuditClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def query(self, params: audit.AuditQueryParams) -> list[audit.AuditEntry]:
        return _entries.decode(self._conn.call(_IFACE + "QueryAudit", params)).entries

    def verify(self) -> audit.AuditVerdict:
        return _verdict.decode(self._conn.call(_IFACE + "VerifyAudit"))

    def forward_status(self) -> list[audit.Destination]:
        return _forward.decode(self._conn.call(_IFACE + "GetForwardStatus")).destinations

    def export(self) -> list[str]:
        lines: list[str] = []
        for raw in self._conn.call_more(_IFACE + "ExportAudit"):
            lines += _export.decode(raw).lines
        return lines
