"""The AgentX protocol's PDUs (RFC 2741 section 6) as bytes and back: what the subagent
says to the master agent (Open, Register, Notify, Ping, Response, Close) and what it
reads from it (requests and Responses). Pure: no I/O.

We write in network byte order (the NETWORK_BYTE_ORDER flag); each PDU read is decoded in
the order its own flag declares, as the RFC requires of a receiver. Anything that does not
parse raises AgentxParseError: the session answers parseError or closes, it never guesses.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from mfpsecd.alerts.smi import Oid, SmiType, VarBind

HEADER_SIZE = 20
VERSION = 1
# Bigger than any request snmpd sends (its own PDUs are bounded by the SNMP message size,
# 64 KiB at most), small enough that a broken peer cannot make us buffer much.
MAX_PAYLOAD = 1 << 20
INTERNET: Oid = (1, 3, 6, 1)


class AgentxParseError(ValueError):
    """A PDU that does not follow RFC 2741."""


class PduType(enum.IntEnum):
    OPEN = 1
    CLOSE = 2
    REGISTER = 3
    UNREGISTER = 4
    GET = 5
    GET_NEXT = 6
    GET_BULK = 7
    TEST_SET = 8
    COMMIT_SET = 9
    UNDO_SET = 10
    CLEANUP_SET = 11
    NOTIFY = 12
    PING = 13
    INDEX_ALLOCATE = 14
    INDEX_DEALLOCATE = 15
    ADD_AGENT_CAPS = 16
    REMOVE_AGENT_CAPS = 17
    RESPONSE = 18


class Flag(enum.IntFlag):
    INSTANCE_REGISTRATION = 0x01
    NEW_INDEX = 0x02
    ANY_INDEX = 0x04
    NON_DEFAULT_CONTEXT = 0x08
    NETWORK_BYTE_ORDER = 0x10


class AgentxError(enum.IntEnum):
    """res.error values (RFC 2741 6.2.16) and the SNMP errors a subagent may return."""

    NO_ERROR = 0
    GEN_ERR = 5
    NO_ACCESS = 6
    COMMIT_FAILED = 14
    UNDO_FAILED = 15
    NOT_WRITABLE = 17
    OPEN_FAILED = 256
    NOT_OPEN = 257
    INDEX_WRONG_TYPE = 258
    INDEX_ALREADY_ALLOCATED = 259
    INDEX_NONE_AVAILABLE = 260
    INDEX_NOT_ALLOCATED = 261
    UNSUPPORTED_CONTEXT = 262
    DUPLICATE_REGISTRATION = 263
    UNKNOWN_REGISTRATION = 264
    UNKNOWN_AGENT_CAPS = 265
    PARSE_ERROR = 266
    REQUEST_DENIED = 267
    PROCESSING_ERROR = 268


class CloseReason(enum.IntEnum):
    OTHER = 1
    PARSE_ERROR = 2
    PROTOCOL_ERROR = 3
    TIMEOUTS = 4
    SHUTDOWN = 5
    BY_MANAGER = 6


@dataclass(frozen=True)
class Header:
    type: int  # a PduType value, or one this module does not know
    flags: Flag
    session_id: int
    transaction_id: int
    packet_id: int
    payload_length: int

    @property
    def big_endian(self) -> bool:
        return Flag.NETWORK_BYTE_ORDER in self.flags


@dataclass(frozen=True)
class SearchRange:
    start: Oid
    include: bool
    end: Oid  # () : no upper bound


@dataclass(frozen=True)
class Request:
    """A Get, GetNext or GetBulk from the master agent."""

    header: Header
    context: bytes | None
    ranges: list[SearchRange]
    non_repeaters: int = 0
    max_repetitions: int = 0


@dataclass(frozen=True)
class Response:
    header: Header
    sys_uptime: int
    error: int
    index: int
    varbinds: list[VarBind]


def decode_header(data: bytes) -> Header:
    if len(data) != HEADER_SIZE:
        raise AgentxParseError("short header")
    version, pdu_type, flags = data[0], data[1], Flag(data[2] & 0x1F)
    if version != VERSION:
        raise AgentxParseError(f"version {version}")
    order = ">" if Flag.NETWORK_BYTE_ORDER in flags else "<"
    session, transaction, packet, length = struct.unpack(order + "4I", data[4:])
    if length % 4 or length > MAX_PAYLOAD:
        raise AgentxParseError(f"payload length {length}")
    return Header(pdu_type, flags, session, transaction, packet, length)


def _header(
    pdu_type: PduType, payload: bytes, *, session: int, transaction: int, packet: int, flags: Flag
) -> bytes:
    flags |= Flag.NETWORK_BYTE_ORDER
    return (
        struct.pack(
            ">BBBB4I", VERSION, pdu_type, flags, 0, session, transaction, packet, len(payload)
        )
        + payload
    )


# ---------------------------------------------------------------- encoding


def encode_oid(oid: Oid, *, include: bool = False) -> bytes:
    prefix, subids = 0, oid
    if len(oid) >= 5 and oid[:4] == INTERNET and 0 < oid[4] <= 255:
        prefix, subids = oid[4], oid[5:]
    if len(subids) > 128 or any(not 0 <= s <= 0xFFFFFFFF for s in subids):
        raise ValueError(f"not an AgentX object identifier: {oid}")
    return struct.pack(f">BBBB{len(subids)}I", len(subids), prefix, int(include), 0, *subids)


def encode_octets(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4)


def encode_varbind(vb: VarBind) -> bytes:
    head = struct.pack(">HH", vb.type, 0) + encode_oid(vb.oid)
    v = vb.value
    match vb.type:
        case SmiType.INTEGER:
            assert isinstance(v, int)
            return head + struct.pack(">i", v)
        case SmiType.COUNTER32 | SmiType.GAUGE32 | SmiType.TIME_TICKS:
            assert isinstance(v, int)
            return head + struct.pack(">I", v & 0xFFFFFFFF)
        case SmiType.COUNTER64:
            assert isinstance(v, int)
            return head + struct.pack(">Q", v & 0xFFFFFFFFFFFFFFFF)
        case SmiType.OCTET_STRING | SmiType.IP_ADDRESS | SmiType.OPAQUE:
            assert isinstance(v, bytes)
            return head + encode_octets(v)
        case SmiType.OBJECT_IDENTIFIER:
            assert isinstance(v, tuple)
            return head + encode_oid(v)
        case _:  # Null and the exceptions carry no data
            return head


def open_pdu(*, packet: int, timeout_s: int, oid: Oid, description: str) -> bytes:
    payload = struct.pack(">B3x", timeout_s) + encode_oid(oid) + encode_octets(description.encode())
    return _header(PduType.OPEN, payload, session=0, transaction=0, packet=packet, flags=Flag(0))


def register_pdu(*, session: int, packet: int, subtree: Oid, priority: int = 127) -> bytes:
    payload = struct.pack(">BBBx", 0, priority, 0) + encode_oid(subtree)
    return _header(
        PduType.REGISTER, payload, session=session, transaction=0, packet=packet, flags=Flag(0)
    )


def notify_pdu(*, session: int, packet: int, varbinds: list[VarBind]) -> bytes:
    payload = b"".join(encode_varbind(v) for v in varbinds)
    return _header(
        PduType.NOTIFY, payload, session=session, transaction=0, packet=packet, flags=Flag(0)
    )


def ping_pdu(*, session: int, packet: int) -> bytes:
    return _header(PduType.PING, b"", session=session, transaction=0, packet=packet, flags=Flag(0))


def close_pdu(*, session: int, packet: int, reason: CloseReason) -> bytes:
    payload = struct.pack(">B3x", reason)
    return _header(
        PduType.CLOSE, payload, session=session, transaction=0, packet=packet, flags=Flag(0)
    )


def response_pdu(
    request: Header, varbinds: list[VarBind], *, error: int = 0, index: int = 0
) -> bytes:
    """The answer to a request: same session, transaction and packet ids."""
    payload = struct.pack(">IHH", 0, error, index) + b"".join(encode_varbind(v) for v in varbinds)
    return _header(
        PduType.RESPONSE,
        payload,
        session=request.session_id,
        transaction=request.transaction_id,
        packet=request.packet_id,
        flags=Flag(0),
    )


# ---------------------------------------------------------------- decoding


class _Reader:
    def __init__(self, data: bytes, big_endian: bool) -> None:
        self._data = data
        self._pos = 0
        self._order = ">" if big_endian else "<"

    @property
    def done(self) -> bool:
        return self._pos >= len(self._data)

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise AgentxParseError("truncated")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(self._order + fmt, self.take(struct.calcsize(fmt)))

    def oid(self) -> tuple[Oid, bool]:
        n, prefix, include, _ = self.take(4)
        if n > 128:
            raise AgentxParseError(f"{n} sub-identifiers")
        subids = self.unpack(f"{n}I")
        return ((*INTERNET, prefix, *subids) if prefix else subids), bool(include)

    def octets(self) -> bytes:
        (n,) = self.unpack("I")
        data = self.take(n)
        self.take(-n % 4)
        return data

    def varbind(self) -> VarBind:
        raw_type, _ = self.unpack("HH")
        try:
            kind = SmiType(raw_type)
        except ValueError:
            raise AgentxParseError(f"value type {raw_type}") from None
        oid, _ = self.oid()
        value: int | bytes | Oid | None
        match kind:
            case SmiType.INTEGER:
                (value,) = self.unpack("i")
            case SmiType.COUNTER32 | SmiType.GAUGE32 | SmiType.TIME_TICKS:
                (value,) = self.unpack("I")
            case SmiType.COUNTER64:
                (value,) = self.unpack("Q")
            case SmiType.OCTET_STRING | SmiType.IP_ADDRESS | SmiType.OPAQUE:
                value = self.octets()
            case SmiType.OBJECT_IDENTIFIER:
                value, _ = self.oid()
            case _:
                value = None
        return VarBind(oid, kind, value)


def decode_request(header: Header, payload: bytes) -> Request:
    """A Get, GetNext or GetBulk payload."""
    r = _Reader(payload, header.big_endian)
    context = r.octets() if Flag.NON_DEFAULT_CONTEXT in header.flags else None
    non_repeaters = max_repetitions = 0
    if header.type == PduType.GET_BULK:
        non_repeaters, max_repetitions = r.unpack("HH")
    ranges = []
    while not r.done:
        start, include = r.oid()
        end, _ = r.oid()
        ranges.append(SearchRange(start, include, end))
    return Request(header, context, ranges, non_repeaters, max_repetitions)


def decode_response(header: Header, payload: bytes) -> Response:
    r = _Reader(payload, header.big_endian)
    uptime, error, index = r.unpack("IHH")
    varbinds = []
    while not r.done:
        varbinds.append(r.varbind())
    return Response(header, uptime, error, index, varbinds)


def decode_varbinds(header: Header, payload: bytes) -> list[VarBind]:
    """A TestSet's (or a Notify's) varbind list."""
    r = _Reader(payload, header.big_endian)
    if Flag.NON_DEFAULT_CONTEXT in header.flags:
        r.octets()
    out = []
    while not r.done:
        out.append(r.varbind())
    return out
