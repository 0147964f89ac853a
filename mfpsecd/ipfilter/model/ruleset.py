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
from typing import Any, Literal

from mfpsecd.base.addresses import MAX_ADDRESS, Family, Range, address_text, merge

TABLE = "mfpsecd"
Proto = Literal["tcp", "udp"]
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


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
        if not 0 <= r.start <= r.end <= MAX_ADDRESS[r.family]:
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
        first = address_text(r.family, r.start)
        if r.start == r.end:
            out.append(first)
            continue
        length = r.prefix_length()
        if length is not None:
            out.append({"prefix": {"addr": first, "len": length}})
        else:
            out.append({"range": [first, address_text(r.family, r.end)]})
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
