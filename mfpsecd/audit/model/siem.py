"""Audit records as SIEM messages (SPEC L-3): CEF or LEEF bodies in RFC 5424 syslog
messages, framed by octet counting (RFC 5425 over TLS, RFC 6587 over plain TCP).

Pure functions: record in, bytes out. The forwarder (transport, cursors, retry) builds on
these; a record's sequence number travels in the structured data
([mfpsecd@32473 seq="N"]) so a receiver can prove there are no gaps or repeats.

Escaping follows each format's own rules. CEF header fields escape \\ and |; CEF
extension values escape \\, = and line breaks (\\n, \\r). LEEF 2.0 defines escaping for
the header only (\\ and |): an attribute value runs to the next delimiter and a parser
splits it from its key at the first =, so values are sent as they are and each message
declares a delimiter that occurs in none of its values (^ unless a value holds one, then
~ and so on). Control characters in LEEF values are shown as \\uXXXX: LEEF cannot carry
them, and a syslog relay would rewrite them (rsyslog turns a tab into #011). The JSON in
the details attribute carries the exact text in both formats. Non-ASCII text is UTF-8.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Record

VENDOR = "mfpsecd project"
PRODUCT = "mfpsecd"
# 32473 is the private enterprise number reserved for documentation (RFC 5612); a
# vendor build replaces it with its own.
SD_ID = "mfpsecd@32473"
FACILITY_LOG_AUDIT = 13
# Printable (relays keep them), rare in values, and none is special in the header.
LEEF_DELIMITERS = "^~`!$"


@dataclasses.dataclass(frozen=True)
class Device:
    """The device every message comes from: a SIEM watching a fleet tells the MFPs apart
    and ties an event to the key that signs the device's evidence."""

    model: str = ""
    serial: str = ""
    fingerprint: str = ""  # SHA-256 of the identity key (hex)
    firmware: str = ""  # the firmware version booted
    host: str = ""  # the syslog HOSTNAME (filled in by syslog_message)


NO_DEVICE = Device()
CERTIFICATE_TYPE = "sanitization-certificate"


class Format(enum.Enum):
    CEF = "cef"
    LEEF = "leef"


# Event types that call for a SIEM's attention beyond the outcome (CEF 0-10).
_SEVERE = {
    EventType.AUTH_LOCKOUT: 8,
    EventType.AUTH_FLOOD: 8,
    EventType.AUDIT_FULL: 8,
    EventType.AUDIT_TAIL_REPAIRED: 6,
    EventType.KEYS_DESTROY: 7,
    EventType.KEYS_RESTORE: 6,
    EventType.FIRMWARE_UPDATE: 6,
    EventType.TIME_CHANGE: 6,
    EventType.NETFILTER_CHANGE: 5,
    EventType.STORE_PURGE: 6,
    EventType.STORE_INTEGRITY: 8,
    EventType.AUDIT_INTEGRITY: 8,
}


def severity(r: Record) -> int:
    base = _SEVERE.get(r.type, 3)
    return min(base + 2, 10) if r.outcome is Outcome.FAILURE else base


def _syslog_severity(cef: int) -> int:
    """CEF 0-10 → syslog 0-7 (2 critical ... 6 informational)."""
    return 2 if cef >= 9 else 3 if cef >= 7 else 4 if cef >= 5 else 5 if cef >= 4 else 6


def _epoch_ms(rfc3339: str) -> int:
    return int(dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def _header_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("\r", "\\r")


def _value_escape(value: str, extra: str = "") -> str:
    out = value.replace("\\", "\\\\").replace("=", "\\=")
    for ch in extra:
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", "\\n").replace("\r", "\\r")


# Events about an account other than the caller's own: the account a failed login tried,
# the user locked or unlocked, the one whose role changed (its name is the object).
_ACCOUNT_EVENTS = frozenset(
    {
        EventType.AUTH_LOGIN,
        EventType.AUTH_LOGOUT,
        EventType.AUTH_LOCKOUT,
        EventType.AUTH_UNLOCK,
        EventType.ROLE_CHANGE,
        EventType.MAINTENANCE_SESSION,
    }
)


def _device_fields(d: Device) -> list[tuple[str, str]]:
    """Who sends, as CEF keys: the serial number identifies the device (its identity key
    when the board has no serial); model, key and firmware in custom strings 3-5."""
    fields = [("dvchost", d.host), ("deviceExternalId", d.serial or d.fingerprint)]
    for n, label, value in (
        (3, "deviceModel", d.model),
        (4, "deviceIdentity", d.fingerprint),
        (5, "firmwareVersion", d.firmware),
    ):
        if value:
            fields += [(f"cs{n}Label", label), (f"cs{n}", value)]
    return fields


def _certificate_fields(r: Record) -> list[tuple[str, str]]:
    """A sanitization certificate's record carries the certificate's digest as a file
    hash, so a SIEM can match the signed document an auditor is shown."""
    digest = r.details.get("certificate_sha256")
    if r.type is not EventType.SANITIZE or not isinstance(digest, str):
        return []
    return [("fileHash", digest), ("fileType", CERTIFICATE_TYPE), ("fname", r.object)]


def _fields(r: Record, device: Device = NO_DEVICE) -> list[tuple[str, str]]:
    """The attributes both formats carry, as (CEF key, value), empty ones left out."""
    s = r.subject
    fields = [
        ("rt", str(_epoch_ms(r.time))),
        ("externalId", str(r.seq)),
        ("act", r.type.value),
        ("outcome", r.outcome.value),
        ("suser", s.user),
        ("sproc", s.origin),
        ("cs1Label", "object"),
        ("cs1", r.object),
        ("cs2Label", "details"),
        ("cs2", json.dumps(r.details, ensure_ascii=False, sort_keys=True)),
    ]
    if r.type in _ACCOUNT_EVENTS:
        fields.append(("duser", r.object))
    if s.uid >= 0:
        fields.append(("suid", str(s.uid)))
    if s.pid >= 0:
        fields.append(("spid", str(s.pid)))
    if s.address:
        fields.append(("src", s.address))
    if s.role:
        fields.append(("spriv", s.role))
    fields += _certificate_fields(r) + _device_fields(device)
    return [(k, v) for k, v in fields if v != ""]


def cef(r: Record, version: str, device: Device = NO_DEVICE) -> str:
    head = "|".join(
        _header_escape(x)
        for x in (
            VENDOR,
            PRODUCT,
            version,
            r.type.value,
            r.type.value.replace(".", " "),
            str(severity(r)),
        )
    )
    ext = " ".join(f"{k}={_value_escape(v)}" for k, v in _fields(r, device))
    return f"CEF:0|{head}|{ext}"


# LEEF's predefined keys where one fits; usrName is the account the event is about (the
# caller's own name when it concerns no other account), so the caller then goes as suser.
_LEEF_KEYS = {
    "externalId": "seq",
    "spid": "pid",
    "suid": "uid",
    "act": "cat",
    "spriv": "role",
    "src": "src",
    "duser": "usrName",
    # Not identHostName: QRadar takes that for the host of a user's identity event.
    "dvchost": "deviceHostName",
    "cs3": "deviceModel",
    "cs4": "deviceIdentity",
    "cs5": "firmwareVersion",
}
# LEEF names the device's attributes by key: CEF's labels for them are not sent.
_LEEF_DROPPED = frozenset({"rt", "cs3Label", "cs4Label", "cs5Label"})
# devTime needs its format named unless it is QRadar's default; this one keeps the ms.
LEEF_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSZ"


def _leef_time(rfc3339: str) -> str:
    t = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}" + t.strftime("%z")


def _leef_value(value: str, delimiter: str) -> str:
    return "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c == delimiter else c
        for c in value
    )


def leef(r: Record, version: str, device: Device = NO_DEVICE) -> str:
    head = "|".join(_header_escape(x) for x in (VENDOR, PRODUCT, version, r.type.value))
    fields = _fields(r, device)
    keys = dict(_LEEF_KEYS)
    if not any(k == "duser" for k, _ in fields):
        keys["suser"] = "usrName"
    attrs = [("devTime", _leef_time(r.time)), ("devTimeFormat", LEEF_TIME_FORMAT)]
    attrs += [(keys.get(k, k), v) for k, v in fields if k not in _LEEF_DROPPED]
    attrs.append(("sev", str(severity(r))))
    values = "".join(v for _, v in attrs)
    delimiter = next((d for d in LEEF_DELIMITERS if d not in values), LEEF_DELIMITERS[0])
    body = delimiter.join(f"{k}={_leef_value(v, delimiter)}" for k, v in attrs)
    return f"LEEF:2.0|{head}|{delimiter}|{body}"


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(
    r: Record,
    fmt: Format,
    *,
    hostname: str,
    version: str,
    procid: str,
    device: Device = NO_DEVICE,
) -> bytes:
    """One RFC 5424 message: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG. procid is
    the pid of the process that wrote the record, or "-" when that is not known."""
    sev = severity(r)
    pri = FACILITY_LOG_AUDIT * 8 + _syslog_severity(sev)
    device = dataclasses.replace(device, host=device.host or hostname)
    body = cef(r, version, device) if fmt is Format.CEF else leef(r, version, device)
    host = _printable(hostname)[:255] or "-"
    msgid = r.type.value[:32]
    sd = f'[{SD_ID} seq="{r.seq}" type="{_sd_escape(r.type.value)}"]'
    return (
        f"<{pri}>1 {r.time} {host} mfpsecd {_printable(procid)[:128] or '-'} {msgid} {sd} {body}"
    ).encode()


def _printable(field: str) -> str:
    """RFC 5424 header fields are PRINTUSASCII (33-126)."""
    return "".join(c for c in field if 33 <= ord(c) <= 126)


def octet_counted(message: bytes) -> bytes:
    """RFC 5425 / RFC 6587 framing: MSG-LEN SP SYSLOG-MSG."""
    return f"{len(message)} ".encode() + message
