"""IP addresses and ranges of them as integers (IPv4 and IPv6): what the IP filter's
policy, its bans and the authentication throttle's exemptions are made of. Parsing and
printing are by arithmetic where they can be: a policy import parses 100,000 ranges and a
ruleset change prints every one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal, NamedTuple

Family = Literal[4, 6]
MAX_ADDRESS = {4: (1 << 32) - 1, 6: (1 << 128) - 1}


class Range(NamedTuple):
    # A tuple: sorting, equality and hashing run in C (100,000 ranges per list).
    family: Family
    start: int
    end: int  # inclusive

    def __str__(self) -> str:
        first = address_text(self.family, self.start)
        if self.start == self.end:
            return first
        length = self.prefix_length()
        if length is not None:
            return f"{first}/{length}"
        return f"{first}-{address_text(self.family, self.end)}"

    def prefix_length(self) -> int | None:
        """The CIDR prefix length when the range is exactly one block, else None (by
        arithmetic: 10,000 ranges are converted at every change)."""
        size = self.end - self.start + 1
        if size & (size - 1) or self.start & (size - 1):
            return None
        return (32 if self.family == 4 else 128) - (size.bit_length() - 1)

    def contains(self, address: int) -> bool:
        return self.start <= address <= self.end


def address_text(family: Family, value: int) -> str:
    """An address as text, as nft prints it (glibc's inet_ntop: the drift check compares
    the two, so an IPv4-mapped address is ::ffff:a.b.c.d); IPv4 by arithmetic. ipaddress
    is ten times slower, and a ruleset change formats every address of every range."""
    if family == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    if value >> 32 == 0xFFFF:
        return "::ffff:" + address_text(4, value & 0xFFFFFFFF)
    if value >> 32 == 0 and value >> 16:
        return "::" + address_text(4, value)
    digits = value.to_bytes(16, "big").hex()
    words = [digits[i : i + 4].lstrip("0") or "0" for i in range(0, 32, 4)]
    best = length = run = 0  # the first longest run of zero words, if two or more
    for i, word in enumerate(words):
        run = run + 1 if word == "0" else 0
        if run > length:
            best, length = i - run + 1, run
    if length < 2:
        return ":".join(words)
    return ":".join(words[:best]) + "::" + ":".join(words[best + length :])


def _ipv4(text: str) -> int | None:
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        # Decimal only, no leading zero (ipaddress refuses them too: octal or a typo).
        if (
            not (part.isascii() and part.isdigit())
            or len(part) > 3
            or (len(part) > 1 and part[0] == "0")
            or int(part) > 255
        ):
            return None
        value = value << 8 | int(part)
    return value


def _quick_parse(text: str) -> Range | None:
    """The most common form (an IPv4 address or CIDR without host bits) by hand, a
    tenth of ipaddress' cost (an import parses 100,000 lines); None for anything else,
    which parse_range then parses, or explains."""
    addr, slash, length = text.partition("/")
    value = _ipv4(addr)
    if value is None:
        return None
    if not slash:
        return Range(4, value, value)
    if not (length.isascii() and length.isdigit()) or len(length) > 2 or int(length) > 32:
        return None
    size = 1 << (32 - int(length))
    if value & (size - 1):
        return None
    return Range(4, value, value + size - 1)


def parse_range(text: str) -> Range:
    """`192.168.0.0/24`, `10.0.0.5`, `10.0.0.1-10.0.0.99`, `2001:db8::/48`; host bits set
    in a CIDR are refused (a typo, not a range). ValueError says what is wrong."""
    text = text.strip()
    if (quick := _quick_parse(text)) is not None:
        return quick
    if "-" in text:
        a, _, b = text.partition("-")
        first, last = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
        if first.version != last.version:
            raise ValueError(f"{text}: both ends must be IPv4 or both IPv6")
        if int(first) > int(last):
            raise ValueError(f"{text}: the start is after the end")
        return Range(first.version, int(first), int(last))
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text}: {exc}") from None
    return Range(net.version, int(net.network_address), int(net.broadcast_address))


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, overlapping and adjacent ranges joined (nftables interval sets refuse
    overlaps)."""
    out: list[Range] = []
    for r in sorted(ranges):
        if out and out[-1].family == r.family and r.start <= out[-1].end + 1:
            if r.end > out[-1].end:
                out[-1] = Range(r.family, out[-1].start, r.end)
        else:
            out.append(r)
    return out
