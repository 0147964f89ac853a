"""The IP filter service (SPEC N-1..N-4): the administrator's policy, kept in the state
store, compiled with the device's current addresses and applied as one transaction.

A change is checked, compiled and applied first; only when the kernel took it is it
stored and audited, so a refused change leaves both the kernel and the store as they
were. The compiled ruleset is also written to the state directory for the boot unit,
which puts it back before the network comes up (`mfpsecd net-restore`). The rules stay
in the kernel when the daemon dies; a restart applies the stored policy again. The quick
filter follows address changes: every burst of rtnetlink events leads to a fresh look at
the addresses and, when its ranges changed, a new ruleset.

Adding or removing one range does not rebuild anything: the kernel's interval set gets the
merged elements it loses and gains (core.range_set) in one transaction, the store one row,
so the call costs the same with 100 ranges as with 100,000. What is O(n) (the boot rules
file, the baseline for drift checks) follows within SETTLE_S, coalesced, under the lock. A
whole list comes in by `import_ranges`, validated as a whole and applied as one
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import msgspec
import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.model import setting_changes
from mfpsecd.audit.service import Auditor
from mfpsecd.base import durable
from mfpsecd.base.addresses import Family, Range, merge, parse_range
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.base.transfer import DEFAULT_LIMITS, PolledReader, TransferLimits, WorkerPool, watched
from mfpsecd.ipfilter.model import ruleset as nf
from mfpsecd.ipfilter.model.range_set import Delta, RangeSet
from mfpsecd.ipfilter.ports import DeviceAddresses, Netfilter

log = structlog.get_logger("mfpsecd.netfilter")
COMPONENT = "netfilter"
# The services whose loss cuts off a remote administrator (the web front-end).
_WEB = ("https", "http")
ListName = Literal["allow", "deny"]


LISTS: tuple[ListName, ...] = ("allow", "deny")
# The boot rules file follows single edits this late (or ten times what writing it costs).
SETTLE_S = 0.5
MAX_IMPORT_BYTES = 16 << 20  # a file of ranges (about a million of them)
COMPACT_ROWS = 1000  # a list's edit rows are folded into a snapshot beyond this (or its size)
EVENT_CHECK_S = 2.0  # drift checks led by table notifications: at most one this often
IMPORT_ERRORS_SHOWN = 5


class StoredPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The ranges are rows of net_ranges, as "F:START-END", F the IP version and the bounds
    # in hex: cheap to write and read back (the text form is what `mfpsec net show` prints).
    quick: bool = False
    enabled: list[str] | None = None  # None: every service on (the factory setting)


@dataclass(frozen=True)
class NetSettings:
    services: tuple[nf.Service, ...]
    wired: tuple[str, ...]
    wireless: tuple[str, ...]
    rules_file: Path  # what the boot unit applies before the network comes up
    summary_interval_s: float = 60.0  # refused-connection summaries at most this often
    debounce_s: float = 0.1  # address events are gathered this long before a new look
    transfers: TransferLimits = DEFAULT_LIMITS  # a range file read from a descriptor


@dataclass(frozen=True)
class NetView:
    policy: nf.Policy
    services: tuple[nf.Service, ...]
    device: nf.Device
    in_kernel: bool
    applied_at: str
    # What the kernel enforces: each list merged (sorted; not to be changed by the reader).
    effective_allow: list[Range] = field(repr=False)
    effective_deny: list[Range] = field(repr=False)
    banned: list[Ban] = field(default_factory=list)


@dataclass(frozen=True)
class Ban:
    range: Range
    left_s: int  # until the kernel lets it expire


@dataclass(frozen=True)
class Imported:
    ranges: int  # lines with a range in the file
    added: int  # new to the list
    unchanged: int  # in the list already
    removed: int  # (replace) in the list before, not in the file
    duplicates: int  # repeated in the file


_MOVING = ("handle", "packets", "bytes")


def _elements_of(listing: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each set's elements in a full listing, comparable (the refused-source sets, which
    the kernel fills, left out)."""
    return {
        str(item["set"]["name"]): _comparable(item["set"].get("elem", []))
        for item in listing
        if "set" in item and not str(item["set"].get("name", "")).startswith(("refused", "banned"))
    }


def _comparable(elements: Iterable[Any]) -> list[str]:
    return sorted(_ENCODE(e).decode() for e in elements)


def _shape(listing: list[dict[str, Any]]) -> list[Any]:
    """A terse table listing (no set elements) without what changes by itself: object
    handles, counter values, and the dynamic sets of refused sources."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in _MOVING}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    out = []
    for item in listing:
        if "metainfo" in item:
            continue
        if str(item.get("set", {}).get("name", "")).startswith("refused"):
            out.append(strip({"set": {k: v for k, v in item["set"].items() if k != "elem"}}))
        else:
            out.append(strip(item))
    return out


def _pack(r: Range) -> str:
    return f"{r.family}:{r.start:x}-{r.end:x}"


def _unpack(text: str) -> Range:
    family, _, bounds = text.partition(":")
    start, _, end = bounds.partition("-")
    r = Range(4 if family == "4" else 6, int(start, 16), int(end, 16))
    if family not in ("4", "6") or not 0 <= r.start <= r.end < 1 << (32 if r.family == 4 else 128):
        raise ValueError(f"stored range {text!r}")
    return r


def to_policy(
    stored: StoredPolicy, services: Sequence[nf.Service], rows: Iterable[tuple[object, ...]]
) -> nf.Policy:
    """The policy from its row and the lists' log (list, op, packed) in order: a snapshot
    replaces the list, an add appends, a remove takes out; a range entered twice in one
    list (an older daemon allowed it) counts once."""
    names = [s.name for s in services]
    lists: dict[str, dict[Range, None]] = {name: {} for name in LISTS}
    for name, op, packed in rows:
        entries = lists[str(name)]
        if op == "snapshot":
            entries.clear()
            entries.update(dict.fromkeys(map(_unpack, str(packed).split("\n"))))
        elif op == "add":
            entries[_unpack(str(packed))] = None
        else:
            entries.pop(_unpack(str(packed)), None)
    return nf.Policy(
        allow=tuple(lists["allow"]),
        deny=tuple(lists["deny"]),
        quick=stored.quick,
        enabled=frozenset(names if stored.enabled is None else stored.enabled),
    )


def to_stored(policy: nf.Policy) -> StoredPolicy:
    return StoredPolicy(quick=policy.quick, enabled=sorted(policy.enabled))


def _with(policy: nf.Policy, name: ListName, ranges: tuple[Range, ...]) -> nf.Policy:
    return replace(policy, allow=ranges) if name == "allow" else replace(policy, deny=ranges)


def _range_sets(policy: nf.Policy) -> dict[ListName, RangeSet]:
    return {"allow": RangeSet(policy.allow), "deny": RangeSet(policy.deny)}


def parse_import(text: str) -> list[Range]:
    """One range per line (CIDR, an address, or start-end); `#` starts a comment. Every
    line is checked before anything is used: RulesInvalid names the first few bad ones."""
    out: list[Range] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.partition("#")[0].strip()
        if not entry:
            continue
        try:
            out.append(parse_range(entry))
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        more = len(errors) - IMPORT_ERRORS_SHOWN
        raise MfpsecError(
            ErrorCode.NETWORK_RULES_INVALID,
            reason="; ".join(errors[:IMPORT_ERRORS_SHOWN])
            + (f"; and {more} more line(s)" if more > 0 else "")
            + ": nothing was imported",
        )
    return out


_ENCODE = msgspec.json.Encoder().encode


class NetfilterService:
    def __init__(
        self,
        state: StateStore,
        filt: Netfilter,
        addresses: DeviceAddresses,
        *,
        auditor: Auditor,
        clock: Clock,
        health: HealthRegistry,
        settings: NetSettings,
    ) -> None:
        self._state = state
        self._filter = filt
        self._addresses = addresses
        self._auditor = auditor
        self._clock = clock
        self._health = health
        self.settings = settings
        self._lock = asyncio.Lock()
        self._policy = nf.Policy()
        self._lists = _range_sets(self._policy)  # the policy's lists, with their covers
        self._device = nf.Device(settings.wired, settings.wireless)
        self._applied_device = self._device  # the addresses the kernel's quick sets hold
        self._shape: list[Any] | None = None  # the table as last applied (_shape)
        # Single edits the boot rules file does not show yet (_settle); every change the
        # kernel took counts one generation.
        self._dirty = False
        self._generation = 0
        self._settle_cost = 0.0  # seconds the last settle took
        self._logged: dict[ListName, int] = dict.fromkeys(LISTS, 0)  # edit rows per list
        self._unstored: set[ListName] = set()  # edits in force whose row was not written
        self._event_checked = -EVENT_CHECK_S  # monotonic: the last drift check an event led to
        self._settling: asyncio.Task[None] | None = None
        self._reader = WorkerPool("netfilter-import", 1)
        self._table_known: bool | None = None  # our table is in the kernel (None: not looked)
        self._applied_at = ""
        self._reported: dict[str, int] = {}
        self._last_summary = 0.0

    # ---- state

    async def _load(self) -> nf.Policy:
        def tx(c: StateConnection) -> tuple[tuple[object, ...] | None, list[tuple[object, ...]]]:
            return (
                c.execute("SELECT policy FROM net_policy WHERE id = 1").fetchone(),
                c.execute("SELECT list, op, packed FROM net_ranges ORDER BY seq").fetchall(),
            )

        row, rows = await self._state.run(tx)
        stored = (
            StoredPolicy() if row is None else msgspec.json.decode(str(row[0]), type=StoredPolicy)
        )
        self._logged = {n: sum(1 for r in rows if r[0] == n and r[1] != "snapshot") for n in LISTS}
        return to_policy(stored, self.settings.services, rows)

    async def _store(self, policy: nf.Policy, lists: Iterable[ListName] = ()) -> None:
        """The policy's row, and `lists` as one snapshot row each (their logs restart)."""
        text = msgspec.json.encode(to_stored(policy)).decode()
        snapshots = [(name, "\n".join(map(_pack, getattr(policy, name)))) for name in lists]

        def tx(c: StateConnection) -> None:
            c.execute(
                "INSERT INTO net_policy (id, policy) VALUES (1, ?) ON CONFLICT (id) "
                "DO UPDATE SET policy = excluded.policy",
                (text,),
            )
            for name, packed in snapshots:
                c.execute("DELETE FROM net_ranges WHERE list = ?", (name,))
                if packed:
                    c.execute(
                        "INSERT INTO net_ranges (list, op, packed) VALUES (?, 'snapshot', ?)",
                        (name, packed),
                    )

        await self._state.run(tx)
        for name, _ in snapshots:
            self._logged[name] = 0

    async def _apply(
        self,
        policy: nf.Policy,
        device: nf.Device,
        *,
        layout_may_differ: bool = False,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> list[dict[str, Any]]:
        """Compile and apply; then (once the kernel took it) the boot rules file and `then`
        (the caller's store) together."""
        if self._table_known is None:
            self._table_known = await self._filter.present()
        try:
            # The standalone form (what the boot unit applies to an empty kernel) once;
            # the batch for a kernel that has our table leaves out the counting sets.
            full = nf.compile_ruleset(policy, self.settings.services, device)
        except ValueError as exc:
            raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None
        # The boot rules file is written and flushed under a temporary name while the
        # kernel works (libnftables releases the GIL); renamed once the kernel took it.
        rules_file = self.settings.rules_file
        rules_file.parent.mkdir(parents=True, exist_ok=True)
        staged = asyncio.create_task(
            asyncio.to_thread(durable.stage, rules_file, _ENCODE({"nftables": full}))
        )
        try:
            try:
                await self._filter.apply(nf.for_existing_table(full) if self._table_known else full)
            except MfpsecError as exc:
                if not layout_may_differ or exc.code is not ErrorCode.NETWORK_APPLY_FAILED:
                    raise
                # A table of another layout (an older daemon's, or someone's edit): replaced
                # whole, the one time that is not atomic for packets.
                log.warning("netfilter_table_recreated", reason=exc.params.get("reason"))
                await self._filter.apply(
                    nf.compile_ruleset(policy, self.settings.services, device, recreate=True)
                )
        except BaseException:
            with contextlib.suppress(Exception):
                (await staged).unlink(missing_ok=True)
            raise
        self._table_known = True
        self._shape = _shape(await self._filter.ruleset(terse=True))
        self._generation += 1
        if policy.allow is not self._policy.allow or policy.deny is not self._policy.deny:
            self._lists = _range_sets(policy)
        self._policy, self._device, self._applied_device = policy, device, device
        self._dirty = False
        self._applied_at = rfc3339(self._clock)
        await asyncio.gather(
            asyncio.to_thread(durable.commit, await staged, rules_file),
            *(() if then is None else (then(),)),
        )
        self._health.set(COMPONENT, HealthState.OK, self._describe())
        return full

    def _describe(self) -> str:
        p = self._policy
        on = nf.ports(self.settings.services, p.enabled)
        return (
            f"{len(p.allow)} permitted and {len(p.deny)} refused range(s), quick filter "
            f"{'on' if p.quick else 'off'}, {len(on['tcp'])} TCP / {len(on['udp'])} UDP "
            f"port(s) open"
        )

    async def _device_now(self) -> nf.Device:
        return replace(self._device, addresses=await self._addresses.addresses())

    # ---- life

    async def start(self) -> None:
        """Apply the stored policy (the kernel may hold an older one, or the boot unit's)."""
        async with self._lock:
            try:
                policy = await self._load()
            except (ValueError, msgspec.DecodeError) as exc:
                # Fail closed: a stored policy that does not parse leaves the boot rules.
                self._health.set(COMPONENT, HealthState.FAILED, f"stored policy: {exc}")
                raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None
            await self._apply(policy, await self._device_now(), layout_may_differ=True)
            # Refusals counted before this start were summarised by the daemon that saw them.
            self._reported = await self._filter.refused()
        await self._auditor.record(
            EventType.NETFILTER_CHANGE,
            Outcome.SUCCESS,
            DAEMON,
            "ip filter",
            step="start",
            rules=self._describe(),
        )

    async def run(self) -> None:
        """Follow address changes (the quick filter), look for drift when the table
        changes (and at every interval), and summarise refused connections. The interval
        is kept by deadline, so a stream of events does not put it off."""
        changes = self._addresses.changes()
        events = self._filter.changes()
        pending: asyncio.Task[None] | None = None
        touched: asyncio.Task[None] | None = None
        interval = self.settings.summary_interval_s
        next_round = self._clock.monotonic() + interval
        recheck_at: float | None = None  # a drift check an event asked for, deferred
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(changes))
                if touched is None:
                    touched = asyncio.ensure_future(anext(events))
                now = self._clock.monotonic()
                until = next_round if recheck_at is None else min(next_round, recheck_at)
                done, _ = await asyncio.wait(
                    {pending, touched},
                    timeout=max(0.0, until - now),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if touched in done:
                    touched.result()
                    touched = None
                    asked = await self._on_table_event()
                    if asked is not None:
                        recheck_at = asked if recheck_at is None else min(recheck_at, asked)
                if pending in done:
                    pending.result()
                    pending = None
                    await self._clock.sleep(self.settings.debounce_s)
                    await self.follow_addresses()
                now = self._clock.monotonic()
                if recheck_at is not None and now >= recheck_at:
                    recheck_at = None
                    self._event_checked = now
                    await self.check_drift()
                if now >= next_round:
                    next_round = now + interval
                    await self.summarise_refused()
                    await self.check_drift()
        finally:
            for task in (pending, touched):
                if task is not None:
                    task.cancel()
            for stream in (changes, events):
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]

    async def _on_table_event(self) -> float | None:
        """Someone changed our table: the daemon itself (an apply in progress, or the
        generation moved while the burst settled), or another hand, which may be drift.
        → when to look (at most one look every EVENT_CHECK_S), or None."""
        generation, busy = self._generation, self._lock.locked()
        await self._clock.sleep(self.settings.debounce_s)
        if busy or generation != self._generation or self._lock.locked():
            return None  # its own change (a foreign one at that moment: the next round)
        return max(self._clock.monotonic(), self._event_checked + EVENT_CHECK_S)

    async def follow_addresses(self) -> bool:
        """A fresh look at the addresses; a new ruleset when the quick ranges moved."""
        async with self._lock:
            device = await self._device_now()
            if device == self._device:
                return False
            moved = nf.quick_ranges(device) != nf.quick_ranges(self._device)
            if not (self._policy.quick and moved):
                self._device = device
                return False
            await self._apply(self._policy, device)
        await self._auditor.record(
            EventType.NETFILTER_CHANGE,
            Outcome.SUCCESS,
            DAEMON,
            "quick filter",
            step="addresses",
            ranges=", ".join(str(r) for r in nf.quick_ranges(device)),
        )
        return True

    async def check_drift(self) -> bool:
        """The kernel's table against what the daemon applied: its rules, chains and sets
        (a terse listing against the one taken after the last whole apply) and every
        set's elements (against the policy's, which single edits keep current); not
        handles, counters or the refused-source sets, which move by themselves. The
        listing is read without holding off edits; a round during which one landed is
        skipped. Changed or gone behind the daemon's back: audited as a failure (an alert
        by the default rules), shown in status, and the policy applied again."""
        async with self._lock:
            if self._shape is None:
                return False
            generation = self._generation
        listing = await self._filter.ruleset()
        async with self._lock:
            if generation != self._generation:
                return False  # an edit landed meanwhile: next round
            now = _shape(
                [
                    {"set": {k: v for k, v in i["set"].items() if k != "elem"}} if "set" in i else i
                    for i in listing
                ]
            )
            if now == self._shape and _elements_of(listing) == self._expected_elements():
                return False
            why = (
                "the table was removed"
                if not now
                else "the rules in the kernel differ from the last applied"
            )
            if not now:
                self._table_known = False  # declared anew, its counting sets included
            await self._put_back(why, self._policy, await self._device_now())
            return True

    async def _put_back(self, why: str, policy: nf.Policy, device: nf.Device) -> None:
        """(Under the lock.) Drift: audited as a failure (an alert by the default rules),
        the policy applied whole, status degraded (failed if that did not work)."""
        log.error("netfilter_drift", reason=why)
        await self._auditor.record(
            EventType.NETFILTER_CHANGE,
            Outcome.FAILURE,
            DAEMON,
            "ip filter",
            step="drift",
            phase="drift",
            reason=why,
        )
        try:
            await self._apply(policy, device)
        except MfpsecError as exc:
            self._health.set(
                COMPONENT,
                HealthState.FAILED,
                f"{why} behind the daemon's back, and re-applying failed: {exc.message}",
            )
            raise
        self._health.set(
            COMPONENT,
            HealthState.DEGRADED,
            f"{why} behind the daemon's back at {rfc3339(self._clock)}; "
            f"re-applied: {self._describe()}",
        )

    def _expected_elements(self) -> dict[str, list[str]]:
        """Every set's elements as the kernel lists them, from the policy in force."""
        out: dict[str, list[str]] = {}
        quick = nf.quick_ranges(self._applied_device)
        for family in (4, 6):
            deny_n, allow_n, quick_n = nf.set_names(family)
            out[deny_n] = _comparable(
                nf.elements(r for r in self._lists["deny"].cover if r.family == family)
            )
            out[allow_n] = _comparable(
                nf.elements(r for r in self._lists["allow"].cover if r.family == family)
            )
            out[quick_n] = _comparable(nf.elements(merge(r for r in quick if r.family == family)))
        on = nf.ports(self.settings.services, self._policy.enabled)
        out["tcp_ports"], out["udp_ports"] = _comparable(on["tcp"]), _comparable(on["udp"])
        return out

    async def summarise_refused(self) -> None:
        """One audit record per interval with the sources refused since the last one."""
        now = self._clock.monotonic()
        if now - self._last_summary < self.settings.summary_interval_s:
            return
        self._last_summary = now
        counts = await self._filter.refused()
        fresh = {
            a: n - self._reported.get(a, 0)
            for a, n in counts.items()
            if n > self._reported.get(a, 0)
        }
        self._reported = counts
        if not fresh:
            return
        top = sorted(fresh.items(), key=lambda kv: -kv[1])[:10]
        await self._auditor.record(
            EventType.NETFILTER_REFUSED,
            Outcome.SUCCESS,
            DAEMON,
            "ip filter",
            sources=len(fresh),
            packets=sum(fresh.values()),
            top=", ".join(f"{a} ({n})" for a, n in top),
        )

    # ---- reading and changing

    async def view(self, *, just_applied: bool = False) -> NetView:
        loaded = True if just_applied else await self._filter.present()
        return NetView(
            self._policy,
            self.settings.services,
            self._device,
            loaded,
            self._applied_at,
            self._lists["allow"].cover,
            self._lists["deny"].cover,
            await self.bans() if loaded else [],
        )

    # ---- bans (services.flood_bans decides them)

    async def bans(self) -> list[Ban]:
        out = []
        for family in (4, 6):
            for element, left in await self._filter.banned(f"banned{family}"):
                try:
                    out.append(Ban(parse_range(_element_text(element)), left))
                except ValueError:
                    continue  # not one of ours: drift's business
        return sorted(out, key=lambda b: b.range)

    async def ban(self, r: Range, seconds: int, why: str) -> None:
        """Refuse r at the filter for `seconds` (its time restarts if it is banned)."""
        async with self._auditor.event(EventType.NETFILTER_CHANGE, DAEMON, "ip filter") as ev:
            ev.details.update(change=f"ban {r}", step="ban", seconds=seconds, reason=why)
            async with self._lock:
                await self._filter.ban(f"banned{r.family}", nf.elements([r])[0], seconds)
            ev.succeed()

    async def unban(self, text: str, subject: Subject) -> NetView:
        async with self._auditor.event(EventType.NETFILTER_CHANGE, subject, "ip filter") as ev:
            ev.details.update(change=f"unban {text}", step="ban")
            try:
                r = parse_range(text)
            except ValueError as exc:
                raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None
            async with self._lock:
                lifted = await self._filter.unban(f"banned{r.family}", nf.elements([r])[0])
            if not lifted:
                raise MfpsecError(
                    ErrorCode.NETWORK_RULES_INVALID,
                    reason=f"{text} is not banned (or its ban has expired)",
                )
            ev.succeed()
        return await self.view(just_applied=True)

    def preview(self, change: Callable[[nf.Policy], nf.Policy]) -> list[dict[str, Any]]:
        """The ruleset a change would apply (dry run): nothing is touched."""
        try:
            return nf.compile_ruleset(change(self._policy), self.settings.services, self._device)
        except ValueError as exc:
            raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None

    def _admissible(self, policy: nf.Policy, remote_address: str, confirm: bool) -> None:
        """RulesInvalid for a policy that cannot be applied as it is; WouldLockOut when it
        would cut off the remote administrator's address, unless confirmed."""
        try:
            nf.check(policy, self.settings.services)
        except ValueError as exc:
            raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None
        if (
            remote_address
            and not confirm
            and self._would_cut_off(policy, _range_sets(policy), remote_address)
        ):
            raise MfpsecError(ErrorCode.NETWORK_WOULD_LOCK_OUT, address=remote_address)

    def _would_cut_off(
        self, policy: nf.Policy, lists: dict[ListName, RangeSet], address: str
    ) -> bool:
        """Would policy (whose lists are `lists`) refuse address on every web port? By
        bisection in the merged lists: the same answer as nf.decide, for any length."""
        source = ipaddress.ip_address(address)
        family, value = source.version, int(source)
        if lists["deny"].covers(family, value):
            return True
        if lists["allow"].has_family(family) and not lists["allow"].covers(family, value):
            return True
        if policy.quick and not any(
            r.family == family and r.contains(value) for r in nf.quick_ranges(self._device)
        ):
            return True
        web = {
            port
            for s in self.settings.services
            if s.name in _WEB
            for proto, port in s.ports
            if proto == "tcp"
        }
        return not web & set(nf.ports(self.settings.services, policy.enabled)["tcp"])

    async def change(
        self,
        what: str,
        change: Callable[[nf.Policy], nf.Policy],
        subject: Subject,
        *,
        remote_address: str = "",
        confirm: bool = False,
    ) -> NetView:
        async with self._auditor.event(EventType.NETFILTER_CHANGE, subject, "ip filter") as ev:
            ev.details["change"] = what
            async with self._lock:
                try:
                    policy = change(self._policy)
                except ValueError as exc:
                    raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None
                self._admissible(policy, remote_address, confirm)
                # Stored only once the kernel took it. The addresses are the watcher's
                # (it re-applies when they change).
                lists = [n for n in LISTS if getattr(policy, n) != getattr(self._policy, n)]
                before = self._policy
                await self._apply(policy, self._device, then=lambda: self._store(policy, lists))
                ev.details.update(
                    setting_changes.as_details(
                        setting_changes.changes(before, policy, prefix="network")
                    )
                )
            ev.details["rules"] = self._describe()
            ev.succeed()
        return await self.view(just_applied=True)

    async def edit_range(
        self,
        op: Literal["allow", "deny", "remove"],
        text: str,
        subject: Subject,
        *,
        remote_address: str = "",
        confirm: bool = False,
    ) -> NetView:
        """Permit, refuse or remove one range: the kernel set and the store change by what
        the range touches, not by the lists' length. Adding a range already entered in
        that list changes nothing; removing one takes it out of every list it is in."""
        async with self._auditor.event(EventType.NETFILTER_CHANGE, subject, "ip filter") as ev:
            ev.details["change"] = f"{op} {text}"
            async with self._lock:
                try:
                    r = parse_range(text)
                    edits = self._edits(op, r)
                except ValueError as exc:
                    raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None
                policy = self._policy
                for name, adding in edits:
                    t: tuple[Range, ...] = getattr(policy, name)
                    if not adding:
                        i = t.index(r)
                    # (concatenation: a C copy; unpacking `(*t, r)` is three times slower)
                    policy = _with(policy, name, t + (r,) if adding else t[:i] + t[i + 1 :])  # noqa: RUF005
                try:
                    await self._apply_edit(r, edits, policy, remote_address, confirm)
                except BaseException:
                    self._lists = _range_sets(self._policy)  # as the kernel still has them
                    raise
                if edits:
                    try:
                        await self._state.run(lambda c: _store_edits(c, r, edits))
                    except (MfpsecError, OSError) as exc:
                        # The kernel has it and the store does not: the next settle
                        # writes the whole list (a full disk may have room again).
                        self._unstored.update(name for name, _ in edits)
                        self._health.set(
                            COMPONENT,
                            HealthState.DEGRADED,
                            f"in force but not stored ({exc}); stored again at the next settle",
                        )
                        raise
                    for name, _ in edits:
                        self._logged[name] += 1
            ev.details["rules"] = self._describe()
            ev.succeed()
        return await self.view(just_applied=True)

    def _edits(self, op: str, r: Range) -> list[tuple[ListName, bool]]:
        if op == "remove":
            found: list[tuple[ListName, bool]] = [(n, False) for n in LISTS if r in self._lists[n]]
            if not found:
                raise ValueError(f"{r} is neither a permitted nor a refused range")
            return found
        name: ListName = "allow" if op == "allow" else "deny"
        return [] if r in self._lists[name] else [(name, True)]

    async def _apply_edit(
        self,
        r: Range,
        edits: list[tuple[ListName, bool]],
        policy: nf.Policy,
        remote_address: str,
        confirm: bool,
    ) -> None:
        """The edits into self._lists, their delta into the kernel (or the whole policy,
        when a rule appears or goes); self._lists is left changed only if it worked."""
        restricted = self._lists["allow"].has_family(r.family)
        deltas = {
            name: self._lists[name].add(r) if adding else self._lists[name].remove(r)
            for name, adding in edits
        }
        if (
            remote_address
            and not confirm
            and self._would_cut_off(policy, self._lists, remote_address)
        ):
            raise MfpsecError(ErrorCode.NETWORK_WOULD_LOCK_OUT, address=remote_address)
        if not edits:
            return
        # The "not permitted" rule exists for a family with permitted ranges only.
        if not self._table_known or restricted != self._lists["allow"].has_family(r.family):
            await self._apply(policy, self._device)
            return
        swaps = _swaps(r.family, deltas)
        if swaps:
            try:
                as_left = await self._filter.swap_intervals(swaps)
            except MfpsecError as exc:  # (an interval it cannot express, a full buffer)
                log.warning("netfilter_edit_whole", reason=exc.params.get("reason"))
                await self._apply(policy, self._device)
                return
            if not as_left:  # someone changed the set: drift, and the whole policy anew
                await self._put_back(
                    "a set's elements differ from the last applied", policy, self._device
                )
                return
        self._policy = policy
        self._generation += 1
        self._applied_at = rfc3339(self._clock)
        self._health.set(COMPONENT, HealthState.OK, self._describe())
        self._schedule_settle()

    async def import_ranges(
        self,
        name: ListName,
        text: str,
        subject: Subject,
        *,
        replace_list: bool,
        remote_address: str = "",
        confirm: bool = False,
    ) -> tuple[NetView, Imported]:
        """A whole file of ranges into one list (added to it, or replacing it): checked as
        a whole, applied as one kernel transaction, stored as one, audited as one change
        with its counts. A bad line imports nothing."""
        what = "permitted" if name == "allow" else "refused"
        async with self._auditor.event(EventType.NETFILTER_CHANGE, subject, "ip filter") as ev:
            ev.details.update(change=f"import {what}", mode="replace" if replace_list else "add")
            ranges = parse_import(text)
            unique = dict.fromkeys(ranges)
            async with self._lock:
                current: tuple[Range, ...] = getattr(self._policy, name)
                if replace_list:
                    before = set(current)
                    new = tuple(unique)
                    added = sum(1 for r in new if r not in before)
                    removed = len(before - set(new))
                else:
                    have = self._lists[name]
                    fresh = tuple(r for r in unique if r not in have)
                    new, added, removed = (*current, *fresh), len(fresh), 0
                counts = Imported(
                    len(ranges), added, len(unique) - added, removed, len(ranges) - len(unique)
                )
                policy = _with(self._policy, name, new)
                self._admissible(policy, remote_address, confirm)
                if added or removed:
                    await self._apply(
                        policy, self._device, then=lambda: self._store(policy, [name])
                    )
            ev.details.update(
                ranges=counts.ranges,
                added=counts.added,
                unchanged=counts.unchanged,
                removed=counts.removed,
                duplicates=counts.duplicates,
                rules=self._describe(),
            )
            ev.succeed()
        return await self.view(just_applied=True), counts

    async def read_import(self, reader: PolledReader) -> str:
        """A file of ranges from a passed descriptor, on the service's own thread, with
        the transfer limits (a peer that stalls ends with TransferTimeout)."""

        def run() -> bytes:
            data = bytearray()
            while chunk := reader.read(1 << 20):
                data += chunk
                if len(data) > MAX_IMPORT_BYTES:
                    raise MfpsecError(
                        ErrorCode.NETWORK_RULES_INVALID,
                        reason=f"the file is larger than {MAX_IMPORT_BYTES} bytes",
                    )
            return bytes(data)

        data = await watched(
            self._reader.run(run), reader, self._clock, self.settings.transfers, "range import"
        )
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise MfpsecError(
                ErrorCode.NETWORK_RULES_INVALID, reason="the file is not UTF-8 text"
            ) from None

    # ---- what follows single edits

    def _schedule_settle(self) -> None:
        self._dirty = True
        if self._settling is None or self._settling.done():
            self._settling = asyncio.get_running_loop().create_task(self._settle_later())

    async def _settle_later(self) -> None:
        # At most a tenth of the time goes to it under a stream of edits (a settle of
        # 100,000 ranges costs about 0.3 s of compiling, with the GIL). Again as long as
        # an edit landed while it compiled (the write was then skipped).
        while self._dirty:
            await self._clock.sleep(max(SETTLE_S, 10 * self._settle_cost))
            try:
                started = self._clock.monotonic()
                await self._settle()
                self._settle_cost = self._clock.monotonic() - started
            except (MfpsecError, OSError) as exc:
                log.error("netfilter_settle_failed", error=str(exc))
                self._health.set(
                    COMPONENT,
                    HealthState.DEGRADED,
                    f"the boot rules file could not follow the last change: {exc}",
                )
                return

    async def _settle(self) -> None:
        """The boot rules file for the policy the kernel has now. Compiled without holding
        off edits; written under the lock only if no change landed meanwhile (else the
        next settle, or the whole apply that came, writes it)."""
        async with self._lock:
            if not self._dirty:
                return
            policy, device, generation = self._policy, self._applied_device, self._generation
        text = await asyncio.to_thread(
            lambda: _ENCODE(
                {"nftables": nf.compile_ruleset(policy, self.settings.services, device)}
            )
        )
        async with self._lock:
            if generation == self._generation and self._dirty:
                await _uncancelled(
                    asyncio.to_thread(durable.replace_file, self.settings.rules_file, text)
                )
                self._dirty = False
            # A list's log longer than the list itself: one snapshot row instead.
            long = [
                n
                for n in LISTS
                if n in self._unstored
                or self._logged[n] > max(COMPACT_ROWS, len(getattr(self._policy, n)))
            ]
            if long:
                await self._store(self._policy, long)
                if self._unstored:
                    self._unstored.clear()
                    self._health.set(COMPONENT, HealthState.OK, self._describe())

    async def flush(self) -> None:
        """Before the daemon stops: the boot rules file catches up with single edits."""
        if self._settling is not None:
            self._settling.cancel()
        await self._settle()

    async def reapply(self, subject: Subject) -> NetView:
        """Put the stored policy back into the kernel (e.g. after someone flushed it)."""
        async with self._auditor.event(EventType.NETFILTER_CHANGE, subject, "ip filter") as ev:
            ev.details["change"] = "apply"
            async with self._lock:
                await self._apply(self._policy, await self._device_now())
            ev.succeed()
        return await self.view(just_applied=True)

    def close(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
        self._reader.close()
        self._filter.close()
        self._addresses.close()


def _element_text(element: Any) -> str:
    """A set element as nft lists it, as range text."""
    if isinstance(element, dict) and "prefix" in element:
        return f"{element['prefix']['addr']}/{element['prefix']['len']}"
    if isinstance(element, dict) and "range" in element:
        return f"{element['range'][0]}-{element['range'][1]}"
    return str(element)


def _swaps(
    family: Family, deltas: dict[ListName, Delta]
) -> list[tuple[str, Sequence[Range], Sequence[Range]]]:
    deny_set, allow_set, _ = nf.set_names(family)
    return [
        (deny_set if name == "deny" else allow_set, d.gone, d.new)
        for name, d in deltas.items()
        if d
    ]


def _store_edits(c: StateConnection, r: Range, edits: list[tuple[ListName, bool]]) -> None:
    for name, adding in edits:
        c.execute(
            "INSERT INTO net_ranges (list, op, packed) VALUES (?, ?, ?)",
            (name, "add" if adding else "remove", _pack(r)),
        )


# ---- the changes the IPC offers, as functions of the policy


def quick(on: bool) -> Callable[[nf.Policy], nf.Policy]:
    return lambda p: replace(p, quick=on)


def port(service: str, on: bool) -> Callable[[nf.Policy], nf.Policy]:
    return lambda p: replace(p, enabled=p.enabled | {service} if on else p.enabled - {service})


async def _uncancelled(work: Awaitable[None]) -> None:
    """Await work in a thread to its end even when the caller is cancelled (flush cancels a
    settle): a file write left running in its thread would race the next one for the
    same temporary file, and could land after it. The cancel is raised once it is done."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
