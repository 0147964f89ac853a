"""The IP-filter model: range parsing, merging, the quick filter's ranges (N-3 exactly as
SPEC words it), decisions, and the compiled table's shape."""

from __future__ import annotations

import ipaddress
import itertools
import random
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfpsecd.base.addresses import Range, address_text, merge, parse_range
from mfpsecd.ipfilter.model import ruleset as nf

R = parse_range


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("192.168.0.0/24", "192.168.0.0", "192.168.0.255"),
        ("10.0.0.5", "10.0.0.5", "10.0.0.5"),
        ("10.0.0.1 - 10.0.0.99", "10.0.0.1", "10.0.0.99"),
        ("2001:db8::/48", "2001:db8::", "2001:db8:0:ffff:ffff:ffff:ffff:ffff"),
        ("2001:db8::1-2001:db8::ff", "2001:db8::1", "2001:db8::ff"),
    ],
)
def test_ranges_parse(text: str, start: str, end: str) -> None:
    r = R(text)
    assert (r.start, r.end) == (int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end)))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("192.168.0.1/24", "host bits"),
        ("10.0.0.9-10.0.0.1", "after the end"),
        ("10.0.0.1-::1", "both ends"),
        ("300.1.1.1", "does not appear"),
        ("", "does not appear"),
    ],
)
def test_bad_ranges_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        R(text)


def test_ranges_print_back_in_their_shortest_form() -> None:
    assert [str(R(t)) for t in ("10.0.0.0/8", "10.0.0.7", "10.0.0.1-10.0.0.9")] == [
        "10.0.0.0/8",
        "10.0.0.7",
        "10.0.0.1-10.0.0.9",
    ]


def test_quick_filter_is_the_upper_three_bytes_and_the_upper_64_bits() -> None:
    # SPEC N-3's own examples; a link-local or ULA address adds nothing.
    dev = nf.Device(
        (),
        (),
        tuple(
            ipaddress.ip_interface(a)
            for a in ("192.168.0.134/16", "2345:1:2:3:4:5:6:7/48", "fe80::1/64", "fd00::1/64")
        ),
    )
    assert [str(r) for r in nf.quick_ranges(dev)] == ["192.168.0.0/24", "2345:1:2:3::/64"]


addresses = st.integers(0, (1 << 32) - 1)


@settings(max_examples=200)
@given(st.lists(st.tuples(addresses, addresses), max_size=20), addresses)
def test_merge_keeps_exactly_the_same_addresses(pairs: list[tuple[int, int]], probe: int) -> None:
    ranges = [Range(4, min(a, b), max(a, b)) for a, b in pairs]
    merged = merge(ranges)
    assert any(r.contains(probe) for r in ranges) == any(r.contains(probe) for r in merged)
    assert all(a.end + 1 < b.start for a, b in itertools.pairwise(merged))


def test_decisions() -> None:
    dev = nf.Device(("lan0",), ("wlan0",), (ipaddress.ip_interface("10.7.1.1/16"),))
    services = nf.DEFAULT_SERVICES
    p = nf.Policy(
        deny=(R("10.7.3.0/24"),),
        allow=(R("10.7.0.0/16"),),
        quick=False,
        enabled=frozenset({"http"}),
    )

    def ok(policy: nf.Policy, src: str, port: int = 80, proto: nf.Proto = "tcp") -> bool:
        return nf.decide(policy, services, dev, ipaddress.ip_address(src), proto=proto, port=port)

    assert ok(p, "10.7.2.9") and not ok(p, "10.7.3.9") and not ok(p, "10.8.0.1")
    assert not ok(p, "10.7.2.9", 443) and not ok(p, "10.7.2.9", 80, "udp")
    assert ok(p, "2001:db8::1")  # no IPv6 range given: IPv6 is not restricted
    q = nf.Policy(quick=True, enabled=frozenset({"http"}))
    assert ok(q, "10.7.1.200") and not ok(q, "10.7.2.1") and not ok(q, "2001:db8::1")


def test_the_compiled_table_swaps_contents_and_never_deletes_the_table() -> None:
    dev = nf.Device(("lan0",), ("wlan0",))
    cmds = nf.compile_ruleset(nf.Policy(enabled=frozenset({"wsd"})), nf.DEFAULT_SERVICES, dev)
    assert not any("delete" in c for c in cmds)
    flushed = [c["flush"] for c in cmds if "flush" in c]
    assert {f["chain"]["name"] for f in flushed if "chain" in f} == {"input", "forward", "refuse"}
    chains = {
        c["add"]["chain"]["name"]: c["add"]["chain"] for c in cmds if "chain" in c.get("add", {})
    }
    assert chains["input"]["policy"] == chains["forward"]["policy"] == "drop"
    elements = {
        c["add"]["element"]["name"]: c["add"]["element"]["elem"]
        for c in cmds
        if "element" in c.get("add", {})
    }
    assert elements == {"tcp_ports": [5357], "udp_ports": [3702]}
    again = nf.compile_ruleset(nf.Policy(), nf.DEFAULT_SERVICES, dev, new_table=False)
    assert not any("refused" in str(c.get("add", {}).get("set", {}).get("name", "")) for c in again)
    with pytest.raises(ValueError, match="unknown service"):
        nf.compile_ruleset(nf.Policy(enabled=frozenset({"telnet"})), nf.DEFAULT_SERVICES, dev)


def test_addresses_are_written_as_nft_prints_them_and_parsed_as_ipaddress_does() -> None:
    """The drift check compares the kernel's listing (nft prints with glibc's inet_ntop)
    with the policy's text, so the two must agree; and the fast parser must take and
    refuse exactly what ipaddress does."""
    rng = random.Random(7)
    for _ in range(5000):
        mask = sum(0xFFFF << (16 * w) for w in range(8) if rng.random() < 0.5)
        value = rng.getrandbits(128) & mask
        for v in (value, value & 0xFFFFFFFF, (0xFFFF << 32) | (value & 0xFFFFFFFF)):
            assert address_text(6, v) == socket.inet_ntop(socket.AF_INET6, v.to_bytes(16, "big"))
    texts = [
        "010.1.1.1",
        "1.2.3",
        "1.2.3.4/33",
        "1.2.3.4/ 8",
        "1.2.3.4/+8",
        "1.2.3.4/08",
        "256.1.1.1",
        "1.2.3.4.5",
        "\u0661.2.3.4",
        "fe80::1%eth0",
        "::ffff:1.2.3.4",
    ]
    for _ in range(2000):
        v4 = ipaddress.IPv4Address(rng.getrandbits(32))
        texts += [str(v4), f"{v4}/{rng.randrange(33)}"]
        v6 = rng.getrandbits(128) & ~((1 << rng.randrange(128)) - 1)
        texts.append(f"{ipaddress.IPv6Address(v6)}/{rng.randrange(129)}")
    for text in texts:
        try:
            net = ipaddress.ip_network(text, strict=True)
            expected: Range | None = Range(
                net.version, int(net.network_address), int(net.broadcast_address)
            )
        except ValueError:
            expected = None
        try:
            got: Range | None = parse_range(text)
        except ValueError:
            got = None
        assert got == expected, text
