"""SMI values as SNMP carries them (RFC 2578), independent of any SNMP library: what the
MFPSEC-MIB's notifications and the subagent's objects are made of. The type numbers are
the ones AgentX (RFC 2741 5.4) and BER use. Pure."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from mfpsecd.base.escape import without_controls

Oid = tuple[int, ...]

SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)  # SNMPv2-MIB snmpTrapOID.0
ENTERPRISES: Oid = (1, 3, 6, 1, 4, 1)
# RFC 5612's documentation number: a vendor build replaces it (snmp.enterprise).
DOCUMENTATION_PEN = 32473


class SmiType(enum.IntEnum):
    INTEGER = 2
    OCTET_STRING = 4
    NULL = 5
    OBJECT_IDENTIFIER = 6
    IP_ADDRESS = 64
    COUNTER32 = 65
    GAUGE32 = 66
    TIME_TICKS = 67
    OPAQUE = 68
    COUNTER64 = 70
    NO_SUCH_OBJECT = 128
    NO_SUCH_INSTANCE = 129
    END_OF_MIB_VIEW = 130


@dataclass(frozen=True)
class VarBind:
    oid: Oid
    type: SmiType
    value: int | bytes | Oid | None = None


def mib_root(enterprise: int) -> Oid:
    """mfpsecMIB: { enterprises <PEN> 1 }."""
    return (*ENTERPRISES, enterprise, 1)


def text(oid: Oid, value: str) -> VarBind:
    """An SnmpAdminString: UTF-8 of at most 255 octets (longer text is cut on a
    character), control characters escaped: a trap log or a manager's screen shows what
    a user or a device sent, and must not be driven by it."""
    data = without_controls(value).encode()
    if len(data) > 255:
        data = data[:255].decode(errors="ignore").encode()
    return VarBind(oid, SmiType.OCTET_STRING, data)


UNKNOWN_TIME = bytes(8)  # '0000000000000000'H: never, or not known (as RFC 2790 uses it)


def date_and_time(rfc3339: str) -> bytes:
    """SNMPv2-TC DateAndTime, 11 octets in UTC; UNKNOWN_TIME for "" or a time that
    cannot be read (the TC allows only 8 or 11 octets)."""
    if not rfc3339:
        return UNKNOWN_TIME
    try:
        t = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        return UNKNOWN_TIME
    deci = t.microsecond // 100_000
    fields = [t.year >> 8, t.year & 0xFF, t.month, t.day, t.hour, t.minute, t.second, deci]
    return bytes(fields) + b"+\0\0"  # direction and offset from UTC: +0:00
