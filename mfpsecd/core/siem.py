"""Audit records as SIEM messages (SPEC L-3): CEF or LEEF bodies in RFC 5424 syslog
messages, framed by octet counting (RFC 5425 over TLS, RFC 6587 over plain TCP).

Pure functions: record in, bytes out. The forwarder (transport, cursors, retry) builds on
these; a record's sequence number travels in the structured data
([mfpsecd@32473 seq="N"]) so a receiver can prove there are no gaps or repeats.

Escaping follows the formats' rules: CEF header fields escape \\ and |; CEF extension
values escape \\, = and line breaks (\\n, \\r). LEEF 2.0 here uses ^ as the attribute
delimiter (declared in the header); header fields escape \\ and |, attribute values
escape \\, ^, = and line breaks the same way. Non-ASCII text is sent as UTF-8.
"""

from __future__ import annotations

import datetime as dt
import enum
import json

from mfpsecd.api.auditlog import EventType, Outcome, Record

VENDOR = "mfpsecd project"
PRODUCT = "mfpsecd"
# 32473 is the private enterprise number reserved for documentation (RFC 5612); a
# vendor build replaces it with its own.
SD_ID = "mfpsecd@32473"
FACILITY_LOG_AUDIT = 13
LEEF_DELIMITER = "^"


class Format(enum.Enum):
    CEF = "cef"
    LEEF = "leef"


# Event types that call for a SIEM's attention beyond the outcome (CEF 0-10).
_SEVERE = {EventType.AUTH_LOCKOUT: 8, EventType.AUTH_FLOOD: 8, EventType.AUDIT_FULL: 8,
           EventType.AUDIT_TAIL_REPAIRED: 6, EventType.KEYS_DESTROY: 7,
           EventType.KEYS_RESTORE: 6, EventType.FIRMWARE_UPDATE: 6,
           EventType.TIME_CHANGE: 6, EventType.NETFILTER_CHANGE: 5,
           EventType.STORE_PURGE: 6, EventType.STORE_INTEGRITY: 8}


def severity(r: Record) -> int:
    base = _SEVERE.get(r.type, 3)
    return min(base + 2, 10) if r.outcome is Outcome.FAILURE else base


def _syslog_severity(cef: int) -> int:
    """CEF 0-10 → syslog 0-7 (2 critical ... 6 informational)."""
    return 2 if cef >= 9 else 3 if cef >= 7 else 4 if cef >= 5 else 5 if cef >= 4 else 6


def _epoch_ms(rfc3339: str) -> int:
    return int(dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def _header_escape(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("|", "\\|")
            .replace("\n", "\\n").replace("\r", "\\r"))


def _value_escape(value: str, extra: str = "") -> str:
    out = value.replace("\\", "\\\\").replace("=", "\\=")
    for ch in extra:
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", "\\n").replace("\r", "\\r")


def _fields(r: Record) -> list[tuple[str, str]]:
    """The attributes both formats carry, as (CEF key, value), empty ones left out."""
    s = r.subject
    fields = [("rt", str(_epoch_ms(r.time))), ("externalId", str(r.seq)),
              ("act", r.type.value), ("outcome", r.outcome.value),
              ("suser", s.user), ("sproc", s.origin), ("cs1Label", "object"),
              ("cs1", r.object), ("cs2Label", "details"),
              ("cs2", json.dumps(r.details, ensure_ascii=False, sort_keys=True))]
    if s.uid >= 0:
        fields.append(("suid", str(s.uid)))
    if s.pid >= 0:
        fields.append(("spid", str(s.pid)))
    if s.address:
        fields.append(("src", s.address))
    if s.role:
        fields.append(("spriv", s.role))
    return [(k, v) for k, v in fields if v != ""]


def cef(r: Record, version: str) -> str:
    head = "|".join(_header_escape(x) for x in (
        VENDOR, PRODUCT, version, r.type.value, r.type.value.replace(".", " "),
        str(severity(r))))
    ext = " ".join(f"{k}={_value_escape(v)}" for k, v in _fields(r))
    return f"CEF:0|{head}|{ext}"


_LEEF_KEYS = {"rt": "devTime", "suser": "usrName", "src": "src", "externalId": "seq",
              "spid": "pid", "suid": "uid", "act": "cat", "spriv": "role"}


def leef(r: Record, version: str) -> str:
    head = "|".join(_header_escape(x) for x in (VENDOR, PRODUCT, version, r.type.value))
    attrs = [(_LEEF_KEYS.get(k, k), v) for k, v in _fields(r)]
    attrs.append(("sev", str(severity(r))))
    body = LEEF_DELIMITER.join(f"{k}={_value_escape(v, LEEF_DELIMITER)}" for k, v in attrs)
    return f"LEEF:2.0|{head}|{LEEF_DELIMITER}|{body}"


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(r: Record, fmt: Format, *, hostname: str, version: str,
                   procid: int) -> bytes:
    """One RFC 5424 message: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG."""
    sev = severity(r)
    pri = FACILITY_LOG_AUDIT * 8 + _syslog_severity(sev)
    body = cef(r, version) if fmt is Format.CEF else leef(r, version)
    host = "".join(c for c in hostname if 33 <= ord(c) <= 126)[:255] or "-"
    msgid = r.type.value[:32]
    sd = f'[{SD_ID} seq="{r.seq}" type="{_sd_escape(r.type.value)}"]'
    return f"<{pri}>1 {r.time} {host} mfpsecd {procid} {msgid} {sd} {body}".encode()


def octet_counted(message: bytes) -> bytes:
    """RFC 5425 / RFC 6587 framing: MSG-LEN SP SYSLOG-MSG."""
    return f"{len(message)} ".encode() + message
