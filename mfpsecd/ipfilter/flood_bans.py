"""fail2ban's idea, inside the device: a network source that keeps tripping the flood
detector (A-5 password attacks, A-6 request floods) is refused at the IP filter, for
longer at each trip: `ban_s`, then four times that, up to `ban_max_s`; a source quiet for
`ban_max_s` starts over. The kernel lets a ban expire by itself (the ban sets carry
timeouts), so a restart or a crash never lifts one early; an administrator lifts one with
`mfpsec net unban`. Administrators' sources (`auth.flood.exempt`) are never banned.

Decisions come from the audit log's `auth.flood` records (the auditor's listener): the
detector does not know the filter, and each ban is audited as a `netfilter.change`.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Record
from mfpsecd.auth.model.throttle import Kind, Throttle
from mfpsecd.base.addresses import parse_range
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import MfpsecError
from mfpsecd.ipfilter.service import NetfilterService

log = structlog.get_logger("mfpsecd.flood_bans")
_BANNED_KINDS = frozenset({Kind.PASSWORD_ATTACK.value, Kind.REQUEST_FLOOD.value})
FACTOR = 4
MAX_TRACKED = 4096  # sources whose trips are remembered (the oldest go first)
QUEUE = 1024


@dataclass(frozen=True)
class BanPolicy:
    first_s: float  # 0: no bans
    max_s: float


class FloodBans:
    def __init__(
        self, net: NetfilterService, throttle: Throttle, policy: BanPolicy, clock: Clock
    ) -> None:
        self._net = net
        self._throttle = throttle
        self._policy = policy
        self._clock = clock
        self._queue: collections.deque[Record] = collections.deque(maxlen=QUEUE)
        self._wake = asyncio.Event()
        self._trips: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()

    def offer(self, records: list[Record]) -> None:
        """The auditor's listener: never blocks."""
        for r in records:
            if r.type is EventType.AUTH_FLOOD and r.details.get("kind") in _BANNED_KINDS:
                self._queue.append(r)
                self._wake.set()

    async def run(self) -> None:
        """Supervised task."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self.consider(self._queue.popleft())

    def seconds_for(self, source: str) -> int:
        """Count one more trip of source; → how long this one bans it."""
        now = self._clock.monotonic()
        trips, last = self._trips.pop(source, (0, now))
        if now - last > self._policy.max_s:
            trips = 0
        trips += 1
        self._trips[source] = (trips, now)
        while len(self._trips) > MAX_TRACKED:
            self._trips.popitem(last=False)
        return int(min(self._policy.max_s, self._policy.first_s * FACTOR ** (trips - 1)))

    async def consider(self, record: Record) -> None:
        source = record.object
        if (
            not self._policy.first_s
            or not source.startswith("ip:")
            or self._throttle.exempt(source)
        ):
            return
        try:
            r = parse_range(source.removeprefix("ip:"))
        except ValueError:
            return
        seconds = self.seconds_for(source)
        try:
            await self._net.ban(
                r, seconds, f"{record.details.get('kind')} (audit record {record.seq})"
            )
        except MfpsecError as exc:  # audited as a failure by the filter; the next trip tries
            log.error("flood_ban_failed", source=source, error=exc.code.wire_name)
