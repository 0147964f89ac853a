"""IP filtering and port control (SPEC N-1..N-4) as data, compiled to one nftables table.

The policy is what the administrator sets: ranges of sources permitted and refused (IPv4
and IPv6, as CIDR or start-end), the network services switched on, and the quick IP
filter (N-3). The device's current addresses complete it: the quick filter admits only
the device's own /24 (IPv4) and the /64s of its global unicast addresses (IPv6), and
follows them when they change. `decide` is the model's answer for one packet; `compile`
turns the same policy into the nftables JSON commands that replace the whole table in
one transaction, so the kernel and the model agree by construction and the tests check
that they do.

Order of the input chain: loopback, replies to the device's own connections, IPv6
neighbour discovery (without it IPv6 stops working), then refused ranges, permitted
ranges, the quick filter, and last the switched-on service ports; everything else is
dropped (the chain's policy). Forwarding is dropped altogether, and between the wired and
wireless interfaces explicitly (N-4).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

TABLE = "mfpsecd"
Family = Literal[4, 6]
Proto = Literal["tcp", "udp"]
_MAX = {4: (1 << 32) - 1, 6: (1 << 128) - 1}
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


class Range(NamedTuple):
    # A tuple: sorting, equality and hashing run in C (100,000 ranges per list).
    family: Family
    start: int
    end: int  # inclusive

    def __str__(self) -> str:
        first = _text(self.family, self.start)
        if self.start == self.end:
            return first
        length = self.prefix_length()
        if length is not None:
            return f"{first}/{length}"
        return f"{first}-{_text(self.family, self.end)}"

    def prefix_length(self) -> int | None:
        """The CIDR prefix length when the range is exactly one block, else None (by
        arithmetic: 10,000 ranges are converted at every change)."""
        size = self.end - self.start + 1
        if size & (size - 1) or self.start & (size - 1):
            return None
        return (32 if self.family == 4 else 128) - (size.bit_length() - 1)

    def contains(self, address: int) -> bool:
        return self.start <= address <= self.end


def _addr(family: Family, value: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value)


def _text(family: Family, value: int) -> str:
    """An address as text, as nft prints it (glibc's inet_ntop: the drift check compares
    the two, so an IPv4-mapped address is ::ffff:a.b.c.d); IPv4 by arithmetic. ipaddress
    is ten times slower, and a ruleset change formats every address of every range."""
    if family == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    if value >> 32 == 0xFFFF:
        return "::ffff:" + _text(4, value & 0xFFFFFFFF)
    if value >> 32 == 0 and value >> 16:
        return "::" + _text(4, value)
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


@dataclass(frozen=True)
class Service:
    name: str
    ports: tuple[tuple[Proto, int], ...]


# N-1: the services an MFP offers; a board profile may list its own instead.
DEFAULT_SERVICES = (
    Service("http", (("tcp", 80),)),
    Service("https", (("tcp", 443),)),
    Service("ipp", (("tcp", 631),)),
    Service("raw", (("tcp", 9100),)),
    Service("lpd", (("tcp", 515),)),
    Service("snmp", (("udp", 161),)),
    Service("smb", (("tcp", 445),)),
    Service("ftp", (("tcp", 21),)),
    Service("wsd", (("tcp", 5357), ("udp", 3702))),
    Service("openapi", (("tcp", 50001), ("tcp", 50003))),
)


@dataclass(frozen=True)
class Policy:
    allow: tuple[Range, ...] = ()  # per family: when any is given, only these sources
    deny: tuple[Range, ...] = ()
    quick: bool = False
    enabled: frozenset[str] = frozenset()  # service names switched on


@dataclass(frozen=True)
class Device:
    """What the board and the kernel say: the interfaces and the current addresses."""

    wired: tuple[str, ...]
    wireless: tuple[str, ...]
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = ()


def quick_ranges(device: Device) -> list[Range]:
    """N-3: the /24 of each IPv4 address, the /64 of each global unicast IPv6 address."""
    out = []
    for a in device.addresses:
        if a.version == 4:
            net = ipaddress.ip_network(f"{a.ip}/24", strict=False)
        elif a.ip in GLOBAL_UNICAST:
            net = ipaddress.ip_network(f"{a.ip}/64", strict=False)
        else:
            continue
        out.append(Range(a.version, int(net.network_address), int(net.broadcast_address)))
    return merge(out)


def ports(services: Sequence[Service], enabled: frozenset[str]) -> dict[Proto, list[int]]:
    out: dict[Proto, set[int]] = {"tcp": set(), "udp": set()}
    for s in services:
        if s.name in enabled:
            for proto, port in s.ports:
                out[proto].add(port)
    return {p: sorted(v) for p, v in out.items()}


def check(policy: Policy, services: Sequence[Service]) -> None:
    """ValueError for a policy that cannot be applied as it is (never half-applied)."""
    known = {s.name for s in services}
    unknown = sorted(policy.enabled - known)
    if unknown:
        raise ValueError(f"unknown service {unknown[0]!r} (known: {', '.join(sorted(known))})")
    for r in (*policy.allow, *policy.deny):
        if not 0 <= r.start <= r.end <= _MAX[r.family]:
            raise ValueError(f"range {r.start}-{r.end} is not an IPv{r.family} range")


def _in(ranges: Iterable[Range], family: Family, address: int) -> bool:
    return any(r.family == family and r.contains(address) for r in ranges)


def decide(
    policy: Policy,
    services: Sequence[Service],
    device: Device,
    source: ipaddress.IPv4Address | ipaddress.IPv6Address,
    *,
    proto: Proto,
    port: int,
) -> bool:
    """Would a new connection from source to this port be accepted? (The model the
    compiled rules implement; loopback and replies are always accepted.)"""
    family: Family = source.version
    value = int(source)
    if _in(policy.deny, family, value):
        return False
    allowed = [r for r in policy.allow if r.family == family]
    if allowed and not _in(allowed, family, value):
        return False
    if policy.quick and not _in(quick_ranges(device), family, value):
        return False
    return port in ports(services, policy.enabled)[proto]


# ---------------------------------------------------------------- nftables JSON


def elements(ranges: Iterable[Range]) -> list[Any]:
    """Ranges as nftables JSON set elements: an address, a prefix, or a range."""
    out: list[Any] = []
    for r in ranges:
        first = _text(r.family, r.start)
        if r.start == r.end:
            out.append(first)
            continue
        length = r.prefix_length()
        if length is not None:
            out.append({"prefix": {"addr": first, "len": length}})
        else:
            out.append({"range": [first, _text(r.family, r.end)]})
    return out


def _saddr(family: Family) -> dict[str, Any]:
    return {"payload": {"protocol": "ip" if family == 4 else "ip6", "field": "saddr"}}


def _rule(chain: str, *expr: dict[str, Any], comment: str = "") -> dict[str, Any]:
    rule: dict[str, Any] = {"family": "inet", "table": TABLE, "chain": chain, "expr": list(expr)}
    if comment:
        rule["comment"] = comment
    return {"add": {"rule": rule}}


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


_COUNTER: dict[str, Any] = {"counter": None}
_ACCEPT: dict[str, Any] = {"accept": None}
_DROP: dict[str, Any] = {"drop": None}
_REFUSE: dict[str, Any] = {"jump": {"target": "refuse"}}
_ND = ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"]


def set_names(family: Family) -> tuple[str, str, str]:
    return (f"deny{family}", f"allow{family}", f"quick{family}")


def compile_ruleset(  # noqa: C901 - to split (issue 24)
    policy: Policy,
    services: Sequence[Service],
    device: Device,
    *,
    recreate: bool = False,
    new_table: bool = True,
) -> list[dict[str, Any]]:
    """The commands (the list under "nftables") that replace the table's contents in one
    kernel transaction. The table, its base chains (policy drop) and its sets are added
    when missing and otherwise kept: only rules and set elements are swapped, and those
    change generation at commit, so a packet meets either the old rules or the new ones.
    (Deleting and re-adding the table in one batch is not atomic for packets: the new base
    chain's hook is live before its rules and policy are, and a refused source was seen
    getting through.) recreate: delete it first, for a table of an older layout.
    new_table: also declare the sets that count refused sources. Only for a table that
    does not have them yet: the kernel marks them dynamic, which nft 1.0's JSON cannot
    say, so declaring them again would conflict; they keep their counts across
    replacements."""
    check(policy, services)
    t = {"family": "inet", "name": TABLE}
    base = {"family": "inet", "table": TABLE}
    cmds: list[dict[str, Any]] = [{"add": {"table": dict(t)}}]
    if recreate:
        cmds += [{"delete": {"table": dict(t)}}, {"add": {"table": dict(t)}}]
    cmds += [
        {
            "add": {
                "chain": {
                    **base,
                    "name": "input",
                    "type": "filter",
                    "hook": "input",
                    "prio": 0,
                    "policy": "drop",
                }
            }
        },
        {
            "add": {
                "chain": {
                    **base,
                    "name": "forward",
                    "type": "filter",
                    "hook": "forward",
                    "prio": 0,
                    "policy": "drop",
                }
            }
        },
        {"add": {"chain": {**base, "name": "refuse"}}},
    ]
    cmds += [{"flush": {"chain": {**base, "name": c}}} for c in ("input", "forward", "refuse")]

    def fill(name: str, kind: str, elems: list[Any], flags: list[str]) -> None:
        s: dict[str, Any] = {**base, "name": name, "type": kind}
        if flags:
            s["flags"] = flags
        cmds.append({"add": {"set": s}})
        cmds.append({"flush": {"set": {**base, "name": name}}})
        if elems:
            cmds.append({"add": {"element": {**base, "name": name, "elem": elems}}})

    quick = quick_ranges(device)
    for family in (4, 6):
        kind = "ipv4_addr" if family == 4 else "ipv6_addr"
        deny_n, allow_n, quick_n = set_names(family)
        for name, ranges in ((deny_n, policy.deny), (allow_n, policy.allow), (quick_n, quick)):
            fill(name, kind, elements(merge(r for r in ranges if r.family == family)), ["interval"])
        # Banned sources (services.flood_bans): declared, never flushed, so a ban lasts
        # its time across replacements; the kernel lets each element expire.
        cmds.append(
            {
                "add": {
                    "set": {
                        **base,
                        "name": f"banned{family}",
                        "type": kind,
                        "flags": ["interval", "timeout"],
                    }
                }
            }
        )
        # Refused sources, counted per address for the audit summary; forgotten after an
        # hour of silence, at most 4096 remembered.
        if new_table or recreate:
            cmds.append(
                {
                    "add": {
                        "set": {
                            **base,
                            "name": f"refused{family}",
                            "type": kind,
                            "flags": ["timeout"],
                            "timeout": 3600,
                            "size": 4096,
                        }
                    }
                }
            )
    open_ports = ports(services, policy.enabled)
    fill("tcp_ports", "inet_service", list(open_ports["tcp"]), [])
    fill("udp_ports", "inet_service", list(open_ports["udp"]), [])
    for family in (4, 6):
        # (ip/ip6 saddr implies the family: nft adds the nfproto check itself)
        cmds.append(
            _rule(
                "refuse",
                {
                    "set": {
                        "op": "update",
                        "elem": _saddr(family),  # type: ignore[arg-type]
                        "set": f"@refused{family}",
                        "stmt": [_COUNTER],
                    }
                },
            )
        )
    cmds.append(_rule("refuse", _COUNTER, _DROP))
    cmds += [
        _rule("input", _match({"meta": {"key": "iif"}}, "lo"), _ACCEPT),
        _rule("input", _match({"ct": {"key": "state"}}, ["established", "related"], "in"), _ACCEPT),
        _rule("input", _match({"ct": {"key": "state"}}, "invalid", "in"), _DROP),
        _rule(
            "input",
            _match({"payload": {"protocol": "icmpv6", "field": "type"}}, {"set": _ND}),
            _ACCEPT,
        ),
    ]
    for family in (4, 6):
        deny_n, allow_n, quick_n = set_names(family)  # type: ignore[arg-type]
        src = _saddr(family)  # type: ignore[arg-type]
        cmds.append(_rule("input", _match(src, f"@banned{family}"), _REFUSE, comment="banned"))
        cmds.append(_rule("input", _match(src, f"@{deny_n}"), _REFUSE, comment="refused"))
        if any(r.family == family for r in policy.allow):
            cmds.append(
                _rule("input", _match(src, f"@{allow_n}", "!="), _REFUSE, comment="not permitted")
            )
        if policy.quick:
            cmds.append(
                _rule("input", _match(src, f"@{quick_n}", "!="), _REFUSE, comment="quick filter")
            )
    cmds += [
        _rule(
            "input",
            _match({"payload": {"protocol": "tcp", "field": "dport"}}, "@tcp_ports"),
            _ACCEPT,
        ),
        _rule(
            "input",
            _match({"payload": {"protocol": "udp", "field": "dport"}}, "@udp_ports"),
            _ACCEPT,
        ),
        _rule(
            "input",
            _match({"payload": {"protocol": "icmp", "field": "type"}}, "echo-request"),
            _ACCEPT,
        ),
        _rule(
            "input",
            _match({"payload": {"protocol": "icmpv6", "field": "type"}}, "echo-request"),
            _ACCEPT,
        ),
        _rule(
            "input",
            _match({"meta": {"key": "l4proto"}}, {"set": ["tcp", "udp"]}),
            _REFUSE,
            comment="port closed",
        ),
    ]
    for a, b in ((device.wired, device.wireless), (device.wireless, device.wired)):
        if a and b:  # N-4: never between the wired and the wireless side
            cmds.append(
                _rule(
                    "forward",
                    _match({"meta": {"key": "iifname"}}, {"set": list(a)}),
                    _match({"meta": {"key": "oifname"}}, {"set": list(b)}),
                    _COUNTER,
                    _DROP,
                )
            )
    return cmds


def for_existing_table(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A new-table batch without the counting sets' declarations (see compile_ruleset)."""
    return [
        c
        for c in commands
        if not str(c.get("add", {}).get("set", {}).get("name", "")).startswith("refused")
    ]


def restrictive(device: Device) -> list[dict[str, Any]]:
    """What stands at boot before the daemon has applied the configured policy: nothing
    reaches the device but loopback, replies and neighbour discovery."""
    return compile_ruleset(Policy(), (), device)


def summarise(policy: Policy, services: Sequence[Service], device: Device) -> Mapping[str, Any]:
    return {
        "permitted": [str(r) for r in merge(policy.allow)],
        "refused": [str(r) for r in merge(policy.deny)],
        "quick": policy.quick,
        "quick_ranges": [str(r) for r in quick_ranges(device)] if policy.quick else [],
        "ports": ports(services, policy.enabled),
    }
