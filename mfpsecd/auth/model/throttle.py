"""Password-attack and request-flood detection per source (SPEC A-5, A-6), and what to do
with each authentication request: let it through, delay it, or refuse it outright.

Sources are local uids, the panel, and remote addresses. IPv6 addresses are aggregated
when one prefix sprays many addresses: a /64 that shows `spray_children` distinct /128s
is counted as one source from then on, a /56 with that many distinct /64s likewise, and
a /48 with that many /56s, so rotating through a routed prefix buys an attacker nothing.

Memory is bounded whatever the number of distinct sources: counters and prefix
observations live in LRU tables of at most `max_sources` entries each (a forgotten source
starts again from zero; the total window across all sources still sees the flood), and
detections beyond `max_detections` per window are counted and reported as suppressed with
the next one, so a spray of a million sources cannot flood the audit log either.

Pure logic: the caller passes monotonic time in seconds.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from mfpsecd.base.addresses import Range, parse_range


@dataclass(frozen=True)
class ThrottleLimits:
    failures: int = 10  # failed logins from one source within failure_window_s
    failure_window_s: float = 300.0
    requests: int = 20  # requests from one source within request_window_s
    request_window_s: float = 60.0
    block_factor: int = 4  # beyond requests x block_factor: refused at once, no work done
    total_requests: int = 300  # all sources together within request_window_s
    base_delay_s: float = 0.25
    max_delay_s: float = 5.0
    max_sources: int = 16384
    spray_children: int = 16
    max_detections: int = 20  # detection events per request window (then suppressed)


class Action(enum.Enum):
    ALLOW = "allow"
    DELAY = "delay"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Verdict:
    action: Action
    seconds: float = 0.0  # the delay, or when to retry after a refusal


ALLOW = Verdict(Action.ALLOW)


class Kind(enum.Enum):
    PASSWORD_ATTACK = "password-attack"  # noqa: S105 (A-5; a kind, not a password)
    REQUEST_FLOOD = "request-flood"  # A-6, one source
    TOTAL_FLOOD = "total-flood"  # A-6, all sources together
    SUPPRESSED = "suppressed"  # how many detections were over the per-window limit


@dataclass(frozen=True)
class Detection:
    kind: Kind
    source: str
    count: int  # requests or failures in the window so far
    window_s: float
    suppressed: int  # detections not reported since the last one that was


class _Counter:
    __slots__ = (
        "fail_start",
        "failures",
        "flagged_attack",
        "flagged_flood",
        "req_start",
        "requests",
    )

    def __init__(self, now: float) -> None:
        self.req_start = self.fail_start = now
        self.requests = self.failures = 0
        self.flagged_flood = self.flagged_attack = False


# (prefix length, child length): coarsest first, as the coarsest aggregation wins.
_IPV6_LEVELS = ((48, 56), (56, 64), (64, 128))
_SPRAYING: None = None  # a prefix's observation entry once it counts as one source


class Throttle:
    def __init__(self, limits: ThrottleLimits, exempt: Sequence[Range] = ()) -> None:
        self.limits = limits
        self._exempt = tuple(exempt)
        self._counters: OrderedDict[str, _Counter] = OrderedDict()
        self._prefixes: OrderedDict[tuple[int, int], set[int] | None] = OrderedDict()
        self._total_start = -1e18
        self._total = 0
        self._total_flagged = False
        self._detect_start = -1e18
        self._detections = 0
        self._suppressed = 0

    @property
    def tracked(self) -> int:
        """Entries held (counters + prefix observations): bounded by 2 x max_sources."""
        return len(self._counters) + len(self._prefixes)

    # ---------------------------------------------------------------- sources

    def source_of(self, address: str) -> str:
        """The source an IP address counts as (its aggregated prefix when spraying)."""
        ip = ipaddress.ip_address(address)
        if ip.version == 4:
            return f"ip:{ip}"
        n = int(ip)
        found = self._aggregated(n)
        if found:
            return found
        for plen, clen in _IPV6_LEVELS:
            key = (plen, n >> (128 - plen))
            seen = self._prefixes.get(key, set())
            if seen is not _SPRAYING:
                seen.add(n >> (128 - clen))
                self._prefixes[key] = _SPRAYING if len(seen) >= self.limits.spray_children else seen
            self._prefixes.move_to_end(key)
        while len(self._prefixes) > self.limits.max_sources:
            self._prefixes.popitem(last=False)
        return self._aggregated(n) or f"ip:{ip}/128"

    def _aggregated(self, n: int) -> str:
        for plen, _ in _IPV6_LEVELS:
            key = (plen, n >> (128 - plen))
            if key in self._prefixes and self._prefixes[key] is _SPRAYING:
                net = ipaddress.IPv6Network(((n >> (128 - plen)) << (128 - plen), plen))
                return f"ip:{net}"
        return ""

    def _counter(self, source: str, now: float) -> _Counter:
        c = self._counters.get(source)
        if c is None:
            c = self._counters[source] = _Counter(now)
            while len(self._counters) > self.limits.max_sources:
                self._counters.popitem(last=False)
        else:
            self._counters.move_to_end(source)
        return c

    # ---------------------------------------------------------------- decisions

    def exempt(self, source: str) -> bool:
        """An administrator's source (configured): not delayed for everyone's flood, and
        never banned; its own per-source limits still apply."""
        if not self._exempt or not source.startswith("ip:"):
            return False
        try:
            r = parse_range(source[3:])
        except ValueError:
            return False
        return any(
            e.family == r.family and e.start <= r.start and r.end <= e.end for e in self._exempt
        )

    def request(self, source: str, now: float) -> tuple[Verdict, list[Detection]]:
        """One authentication request from source: what to do, and what it revealed."""
        lim = self.limits
        window = lim.request_window_s
        c = self._counter(source, now)
        if now - c.req_start >= window:
            c.req_start, c.requests, c.flagged_flood = now, 0, False
        c.requests += 1
        if now - self._total_start >= window:
            self._total_start, self._total, self._total_flagged = now, 0, False
        self._total += 1
        found: list[Detection] = []
        if c.requests > lim.requests and not c.flagged_flood:
            c.flagged_flood = True
            self._detect(found, Kind.REQUEST_FLOOD, source, c.requests, window, now=now)
        if self._total > lim.total_requests and not self._total_flagged:
            self._total_flagged = True
            self._detect(found, Kind.TOTAL_FLOOD, "*", self._total, window, now=now)
        if c.requests > lim.requests * lim.block_factor:
            return Verdict(Action.REFUSE, max(c.req_start + window - now, 0.0)), found
        shared = (
            0
            if self.exempt(source)
            else ((self._total - lim.total_requests) * lim.requests // lim.total_requests)
        )
        excess = max(c.requests - lim.requests, shared)
        if excess <= 0:
            return ALLOW, found
        delay = min(lim.base_delay_s * 2.0 ** min(excess - 1, 30), lim.max_delay_s)
        return Verdict(Action.DELAY, delay), found

    def failure(self, source: str, now: float) -> list[Detection]:
        """A failed login from source (wrong password, locked account, unknown user)."""
        lim = self.limits
        c = self._counter(source, now)
        if now - c.fail_start >= lim.failure_window_s:
            c.fail_start, c.failures, c.flagged_attack = now, 0, False
        c.failures += 1
        found: list[Detection] = []
        if c.failures >= lim.failures and not c.flagged_attack:
            c.flagged_attack = True
            self._detect(
                found, Kind.PASSWORD_ATTACK, source, c.failures, lim.failure_window_s, now=now
            )
        return found

    def flush(self, now: float) -> list[Detection]:
        """Once a detection window is over: a summary of the detections it suppressed, so
        a flood that stops inside a window still gets its count into the log."""
        if not self._suppressed or now - self._detect_start < self.limits.request_window_s:
            return []
        summary = Detection(
            Kind.SUPPRESSED, "*", self._suppressed, self.limits.request_window_s, self._suppressed
        )
        self._detect_start, self._detections, self._suppressed = now, 1, 0
        return [summary]

    def _detect(
        self,
        found: list[Detection],
        kind: Kind,
        source: str,
        count: int,
        window: float,
        *,
        now: float,
    ) -> None:
        if now - self._detect_start >= self.limits.request_window_s:
            self._detect_start, self._detections = now, 0
        if self._detections >= self.limits.max_detections:
            self._suppressed += 1
            return
        self._detections += 1
        found.append(Detection(kind, source, count, window, self._suppressed))
        self._suppressed = 0
