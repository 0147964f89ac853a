"""Attack and flood detection per source (A-5, A-6): verdicts, windows, IPv6 prefix
aggregation and the memory bound."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from mfpsecd.auth.model.throttle import Action, Kind, Throttle, ThrottleLimits
from mfpsecd.base.addresses import parse_range

LIMITS = ThrottleLimits(
    failures=5,
    failure_window_s=300,
    requests=10,
    request_window_s=60,
    block_factor=3,
    total_requests=1000,
    base_delay_s=0.25,
    max_delay_s=2.0,
    max_sources=256,
    spray_children=4,
    max_detections=5,
)


def test_requests_allowed_then_delayed_growing_capped_then_refused() -> None:
    t = Throttle(LIMITS)
    verdicts = [t.request("uid:1000", 0.0)[0] for _ in range(31)]
    assert all(v.action is Action.ALLOW for v in verdicts[:10])
    delays = [v.seconds for v in verdicts[10:30]]
    assert all(v.action is Action.DELAY for v in verdicts[10:30])
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0] and max(delays) == 2.0  # growing, capped
    assert verdicts[30].action is Action.REFUSE and verdicts[30].seconds == 60.0
    # Other sources are untouched, and the window ends.
    assert t.request("uid:1001", 1.0)[0].action is Action.ALLOW
    assert t.request("uid:1000", 60.0)[0].action is Action.ALLOW


def test_one_detection_per_source_and_window() -> None:
    t = Throttle(LIMITS)
    found = [d for _ in range(40) for d in t.request("panel", 5.0)[1]]
    assert [(d.kind, d.source, d.count) for d in found] == [(Kind.REQUEST_FLOOD, "panel", 11)]
    attacks = [d for i in range(12) for d in t.failure("ip:192.0.2.7", float(i))]
    assert [(d.kind, d.count) for d in attacks] == [(Kind.PASSWORD_ATTACK, 5)]
    assert [d.kind for i in range(5) for d in t.failure("ip:192.0.2.7", 400.0 + i)] == [
        Kind.PASSWORD_ATTACK
    ]


def test_total_flood_across_sources_delays_everyone() -> None:
    t = Throttle(
        ThrottleLimits(requests=1000, total_requests=50, base_delay_s=0.1, max_delay_s=1.0)
    )
    kinds = [d.kind for i in range(51) for d in t.request(f"uid:{i}", 0.0)[1]]
    assert kinds == [Kind.TOTAL_FLOOD]
    assert t.request("uid:9999", 0.0)[0].action is Action.DELAY  # a newcomer too


def test_ipv6_spraying_aggregates_to_64_then_56_then_48() -> None:
    t = Throttle(LIMITS)
    base = int(ipaddress.IPv6Address("2001:db8:aa:bb00::"))
    # Three distinct /128 in one /64: each its own source.
    assert t.source_of(str(ipaddress.IPv6Address(base + 1))) == "ip:2001:db8:aa:bb00::1/128"
    for i in range(2, 4):
        t.source_of(str(ipaddress.IPv6Address(base + i)))
    # The 4th distinct address makes the /64 one source, for old and new addresses.
    assert t.source_of(str(ipaddress.IPv6Address(base + 4))) == "ip:2001:db8:aa:bb00::/64"
    assert t.source_of(str(ipaddress.IPv6Address(base + 1))) == "ip:2001:db8:aa:bb00::/64"
    # Hopping /64s inside one /56 → the /56.
    sources = {t.source_of(str(ipaddress.IPv6Address(base + (k << 64) + 1))) for k in range(5)}
    assert "ip:2001:db8:aa:bb00::/56" in sources
    # Hopping /56s inside one /48 → the /48.
    sources = {t.source_of(str(ipaddress.IPv6Address(base + (k << 72) + 1))) for k in range(5)}
    assert "ip:2001:db8:aa::/48" in sources
    # Another /48 and IPv4 are not affected.
    assert t.source_of("2001:db8:bb::1") == "ip:2001:db8:bb::1/128"
    assert t.source_of("192.0.2.1") == "ip:192.0.2.1"


def test_memory_is_bounded_under_a_spray_of_distinct_sources() -> None:
    t = Throttle(LIMITS)
    for i in range(50_000):
        src = t.source_of(str(ipaddress.IPv4Address(0x0A000000 + i)))
        t.request(src, i / 1000)
        t.failure(src, i / 1000)
        v6 = t.source_of(str(ipaddress.IPv6Address((0x20010DB8 << 96) + (i << 80) + i)))
        t.request(v6, i / 1000)
    assert t.tracked <= 2 * LIMITS.max_sources


def test_detections_are_bounded_per_window_and_count_the_suppressed() -> None:
    t = Throttle(LIMITS)
    found = []
    for s in range(30):
        for _ in range(11):
            found += t.request(f"uid:{s}", 1.0)[1]
    assert len(found) == LIMITS.max_detections
    assert t.flush(30.0) == []  # the window is not over yet
    [summary] = t.flush(61.5)  # the flood stopped: the count still gets reported
    assert (summary.kind, summary.count) == (Kind.SUPPRESSED, 25)
    assert t.flush(200.0) == []
    later = [d for _ in range(11) for d in t.request("uid:500", 261.5)[1]]
    assert len(later) == 1 and later[0].suppressed == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["uid:1", "uid:2", "panel", "ip:192.0.2.1"]),
            st.floats(min_value=0, max_value=10),
        ),
        max_size=200,
    )
)
def test_never_more_than_the_block_limit_get_through_per_window(
    calls: list[tuple[str, float]],
) -> None:
    t = Throttle(LIMITS)
    passed: dict[str, int] = {}
    now = 0.0
    for source, step in calls:
        now += step / 100  # all within one window
        if t.request(source, now)[0].action is not Action.REFUSE:
            passed[source] = passed.get(source, 0) + 1
    assert all(n <= LIMITS.requests * LIMITS.block_factor for n in passed.values())


def test_an_administrators_source_is_not_delayed_for_everyones_flood() -> None:
    """auth.flood.exempt: while all sources together flood, the exempt network's own
    requests pass undelayed (its own per-source limit still holds); others wait."""
    t = Throttle(LIMITS, exempt=[parse_range("10.1.2.0/24")])
    for i in range(1200):  # a spray: many sources, each under its own limit
        t.request(f"ip:192.0.2.{i % 250}", 1.0)
    assert t.request("ip:192.0.2.251", 1.0)[0].action is Action.DELAY
    assert t.request("ip:10.1.2.3", 1.0)[0].action is Action.ALLOW
    assert t.exempt("ip:10.1.2.3") and not t.exempt("ip:10.1.3.3")
    assert not t.exempt("uid:0") and not t.exempt("panel")
    own = [t.request("ip:10.1.2.4", 2.0)[0].action for _ in range(11)]
    assert own[-1] is Action.DELAY  # its own limit (10) still applies
