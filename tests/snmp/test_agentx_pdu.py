"""The AgentX PDU codec (RFC 2741 section 5, 6) against layouts written out by hand from
the RFC: the OID prefix compression, octet-string padding, both byte orders a master may
use, and PDUs that do not parse."""

from __future__ import annotations

import struct

import pytest

from mfpsecd.alerts.smi import SmiType, VarBind
from mfpsecd.snmp.model import agentx_pdu as pdu
from mfpsecd.snmp.model.agentx_pdu import AgentxParseError, Flag, PduType, SearchRange


def test_an_internet_oid_is_sent_with_its_prefix_compressed() -> None:
    # RFC 2741 5.1: 1.3.6.1.4.1.32473.1 is n_subid 3, prefix 4: 1.32473.1
    assert pdu.encode_oid((1, 3, 6, 1, 4, 1, 32473, 1), include=True) == bytes(
        [3, 4, 1, 0]
    ) + struct.pack(">3I", 1, 32473, 1)
    # The null OID, and one outside 1.3.6.1 (no prefix).
    assert pdu.encode_oid(()) == bytes(4)
    assert pdu.encode_oid((2, 5)) == bytes([2, 0, 0, 0]) + struct.pack(">2I", 2, 5)


def test_octet_strings_are_padded_to_four_bytes() -> None:
    assert pdu.encode_octets(b"abcde") == struct.pack(">I", 5) + b"abcde\0\0\0"
    assert pdu.encode_octets(b"") == bytes(4)


def _request(pdu_type: PduType, payload: bytes, *, big: bool) -> tuple[pdu.Header, bytes]:
    order = ">" if big else "<"
    flags = Flag.NETWORK_BYTE_ORDER if big else Flag(0)
    head = struct.pack(order + "BBBB4I", 1, pdu_type, flags, 0, 7, 8, 9, len(payload))
    return pdu.decode_header(head[:4] + head[4:]), payload


@pytest.mark.parametrize("big", [True, False])
def test_a_getnext_is_read_in_the_byte_order_its_header_declares(big: bool) -> None:
    o = ">" if big else "<"
    start = bytes([3, 4, 1, 0]) + struct.pack(o + "3I", 1, 32473, 1)
    end = bytes([2, 4, 0, 0]) + struct.pack(o + "2I", 1, 32474)
    header, payload = _request(PduType.GET_NEXT, start + end, big=big)
    assert (header.session_id, header.transaction_id, header.packet_id) == (7, 8, 9)
    request = pdu.decode_request(header, payload)
    assert request.ranges == [
        SearchRange((1, 3, 6, 1, 4, 1, 32473, 1), True, (1, 3, 6, 1, 4, 1, 32474))
    ]


def test_a_getbulk_carries_its_repetitions() -> None:
    body = struct.pack(">HH", 1, 25) + pdu.encode_oid((1, 3, 6, 1, 2)) + pdu.encode_oid(())
    header, payload = _request(PduType.GET_BULK, body, big=True)
    request = pdu.decode_request(header, payload)
    assert (request.non_repeaters, request.max_repetitions) == (1, 25)


def test_a_response_round_trips_every_value_type() -> None:
    varbinds = [
        VarBind((1, 3, 6, 1, 4, 1, 1, 1), SmiType.INTEGER, -5),
        VarBind((1, 3, 6, 1, 4, 1, 1, 2), SmiType.OCTET_STRING, b"caf\xc3\xa9"),
        VarBind((1, 3, 6, 1, 4, 1, 1, 3), SmiType.GAUGE32, 4_000_000_000),
        VarBind((1, 3, 6, 1, 4, 1, 1, 4), SmiType.COUNTER64, 1 << 40),
        VarBind((1, 3, 6, 1, 4, 1, 1, 5), SmiType.TIME_TICKS, 12345),
        VarBind((1, 3, 6, 1, 4, 1, 1, 6), SmiType.OBJECT_IDENTIFIER, (1, 3, 6, 1, 6, 3)),
        VarBind((1, 3, 6, 1, 4, 1, 1, 7), SmiType.END_OF_MIB_VIEW),
    ]
    request = pdu.Header(PduType.GET, Flag.NETWORK_BYTE_ORDER, 3, 4, 5, 0)
    data = pdu.response_pdu(request, varbinds, error=0)
    header = pdu.decode_header(data[: pdu.HEADER_SIZE])
    assert header.type == PduType.RESPONSE and header.packet_id == 5
    assert len(data) == pdu.HEADER_SIZE + header.payload_length
    assert pdu.decode_response(header, data[pdu.HEADER_SIZE :]).varbinds == varbinds


@pytest.mark.parametrize(
    "head",
    [
        struct.pack(">BBBB4I", 2, 5, 0x10, 0, 1, 1, 1, 0),  # AgentX version 2
        struct.pack(">BBBB4I", 1, 5, 0x10, 0, 1, 1, 1, 6),  # not a multiple of 4
        struct.pack(">BBBB4I", 1, 5, 0x10, 0, 1, 1, 1, 1 << 24),  # 16 MiB announced
        b"\x01\x05",  # short
    ],
)
def test_a_header_that_breaks_the_rfc_is_refused(head: bytes) -> None:
    with pytest.raises(AgentxParseError):
        pdu.decode_header(head)


def test_truncated_and_nonsensical_payloads_do_not_parse() -> None:
    header = pdu.Header(PduType.GET, Flag.NETWORK_BYTE_ORDER, 1, 1, 1, 8)
    with pytest.raises(AgentxParseError):  # an OID claiming 3 sub-ids and carrying 1
        pdu.decode_request(header, bytes([3, 4, 0, 0]) + struct.pack(">I", 1))
    with pytest.raises(AgentxParseError):  # 200 sub-identifiers: more than RFC 2578 allows
        pdu.decode_request(header, bytes([200, 0, 0, 0]))
    response = pdu.Header(PduType.RESPONSE, Flag.NETWORK_BYTE_ORDER, 1, 1, 1, 0)
    bad_type = struct.pack(">IHH", 0, 0, 0) + struct.pack(">HH", 99, 0) + bytes(4)
    with pytest.raises(AgentxParseError):
        pdu.decode_response(response, bad_type)
