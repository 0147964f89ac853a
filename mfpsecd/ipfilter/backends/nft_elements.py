"""Interval-set elements swapped over nfnetlink directly, in one transaction.

libnftables (1.0.x) reads a whole interval set from the kernel before it adds or deletes
one element (to merge and check overlaps in user space): 0.87 s per edit on a set of
100,000 ranges. The daemon keeps the merged cover itself (core.range_set) and knows which
elements go and which come, so it sends exactly those, as the kernel stores an interval:
its first address, and the address after its last flagged INTERVAL_END (what `nft
--debug=netlink add element` shows). An interval that ends at the family's last address
has no end element; those are left to libnftables (NotEncodable).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable, Sequence

from mfpsecd.base.addresses import Range
from mfpsecd.ipfilter.model.ruleset import TABLE

NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7  # the multicast group of every nftables change (`nft monitor`)
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWSETELEM = 12
NFT_MSG_DELSETELEM = 14
NFNL_MSG_BATCH_BEGIN = 16
NFNL_MSG_BATCH_END = 17
NFPROTO_INET = 1
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_CREATE = 0x400
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_SET_ELEM_FLAGS = 3
NFTA_DATA_VALUE = 1
NFT_SET_ELEM_INTERVAL_END = 1
_WIDTH = {4: 4, 6: 16}
RECV_TIMEOUT_S = 5.0
CHUNK = 800  # intervals per message: 64 bytes each (IPv6) stay under an attribute's 64 KiB


class NotEncodable(ValueError):
    """An interval this encoder does not express (it ends at the last address)."""


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _element(key: bytes, end: bool) -> bytes:
    body = _attr(NFTA_SET_ELEM_KEY | NLA_F_NESTED, _attr(NFTA_DATA_VALUE, key))
    if end:
        body += _attr(NFTA_SET_ELEM_FLAGS, struct.pack("!I", NFT_SET_ELEM_INTERVAL_END))
    return _attr(NFTA_LIST_ELEM | NLA_F_NESTED, body)


def interval_elements(ranges: Iterable[Range]) -> bytes:
    """The kernel's elements for these intervals: a start, and an end marker after."""
    out = bytearray()
    for r in ranges:
        width = _WIDTH[r.family]
        if r.end + 1 >= 1 << (8 * width):
            raise NotEncodable(f"{r} ends at the last address")
        out += _element(r.start.to_bytes(width, "big"), end=False)
        out += _element((r.end + 1).to_bytes(width, "big"), end=True)
    return bytes(out)


def _message(kind: int, flags: int, seq: int, *, res_id: int, family: int, attrs: bytes) -> bytes:
    body = struct.pack("!BBH", family, 0, res_id) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def swap_batch(
    swaps: Sequence[tuple[str, Sequence[Range], Sequence[Range]]], seq: int
) -> tuple[bytes, list[int]]:
    """One transaction: per (set, gone, new), the gone intervals deleted, then the new
    ones added, CHUNK intervals per message (an attribute's length is 16 bits). → the
    batch and the sequence numbers: BATCH_BEGIN's (seq), then each acknowledged one."""
    out = bytearray(
        _message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            res_id=NFNL_SUBSYS_NFTABLES,
            family=0,
            attrs=b"",
        )
    )
    acked: list[int] = []
    for name, gone, new in swaps:
        head = _attr(NFTA_SET_ELEM_LIST_TABLE, TABLE.encode() + b"\0") + _attr(
            NFTA_SET_ELEM_LIST_SET, name.encode() + b"\0"
        )
        for kind, ranges in ((NFT_MSG_DELSETELEM, gone), (NFT_MSG_NEWSETELEM, new)):
            for first in range(0, len(ranges), CHUNK):
                seq += 1
                acked.append(seq)
                flags = (
                    NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE if kind == NFT_MSG_NEWSETELEM else 0)
                )
                elems = _attr(
                    NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED,
                    interval_elements(ranges[first : first + CHUNK]),
                )
                out += _message(
                    (NFNL_SUBSYS_NFTABLES << 8) | kind,
                    flags,
                    seq,
                    res_id=0,
                    family=NFPROTO_INET,
                    attrs=head + elems,
                )
    out += _message(
        NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1, res_id=NFNL_SUBSYS_NFTABLES, family=0, attrs=b""
    )
    return bytes(out), acked


class ElementSocket:
    """A netfilter netlink socket (opened in the calling thread's network namespace)."""

    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER
        )
        self._sock.bind((0, 0))
        self._sock.settimeout(RECV_TIMEOUT_S)
        self._seq = int.from_bytes(os.urandom(2), "big") << 8

    def swap(self, swaps: Sequence[tuple[str, Sequence[Range], Sequence[Range]]]) -> None:
        """OSError (with the kernel's errno) if the transaction was refused: then nothing
        of it was applied."""
        begin = self._seq
        batch, acked = swap_batch(swaps, begin)
        self._seq += len(acked) + 2
        if not acked:
            return
        self._sock.sendall(batch)
        waiting = set(acked)
        whole = {begin, begin + len(acked) + 1}  # an error there fails the whole batch
        while waiting:
            data = self._sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if kind == NLMSG_ERROR and (seq in waiting or seq in whole):
                    (code,) = struct.unpack_from("=i", data, offset + 16)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    waiting.discard(seq)
                if length < 16:
                    raise OSError(errno.EPROTO, "malformed netlink reply")
                offset += (length + 3) & ~3

    def close(self) -> None:
        self._sock.close()


def subscribe_changes() -> socket.socket:
    """A non-blocking socket that receives every nftables change in the calling thread's
    network namespace (what `nft monitor` reads)."""
    sock = socket.socket(
        socket.AF_NETLINK,
        socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        NETLINK_NETFILTER,
    )
    sock.bind((0, 1 << (NFNLGRP_NFTABLES - 1)))
    return sock


def touches_table(data: bytes, table: str = TABLE) -> bool:
    """Does this batch of notifications change `table` (of any family)? Each message's
    first attribute names the table (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE,
    NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE are all type 1)."""
    name = table.encode() + b"\0"
    offset = 0
    while offset + 20 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            return True  # malformed: look at the table rather than miss a change
        if kind >> 8 == NFNL_SUBSYS_NFTABLES and offset + 24 <= len(data):
            alen, atype = struct.unpack_from("=HH", data, offset + 20)
            if (atype & ~NLA_F_NESTED) == 1 and data[offset + 24 : offset + 20 + alen] == name:
                return True
        offset += (length + 3) & ~3
    return False
