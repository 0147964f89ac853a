"""The IP filter service (SPEC N-1..N-4): the administrator's policy, kept in the state
store, compiled with the device's current addresses and applied as one transaction.

A change is checked, compiled and applied first; only when the kernel took it is it
stored and audited, so a refused change leaves both the kernel and the store as they
were. The compiled ruleset is also written to the state directory for the boot unit,
which puts it back before the network comes up (`mfpsecd net-restore`). The rules stay
in the kernel when the daemon dies; a restart applies the stored policy again. The quick
filter follows address changes: every burst of rtnetlink events leads to a fresh look at
the addresses and, when its ranges changed, a new ruleset.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec
import structlog

from mfpsecd.api.auditlog import DAEMON, EventType, Outcome, Subject
from mfpsecd.api.types import HealthState
from mfpsecd.core import netfilter as nf
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.ports import Clock, DeviceAddresses, Netfilter, StateStore
from mfpsecd.services import durable
from mfpsecd.services.audit import Auditor
from mfpsecd.services.health import HealthRegistry, rfc3339

log = structlog.get_logger("mfpsecd.netfilter")
COMPONENT = "netfilter"
# The services whose loss cuts off a remote administrator (the web front-end).
_WEB = ("https", "http")


class StoredPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Ranges as "F:START-END", F the IP version and the bounds in hex: cheap to write and
    # read back for 10,000 ranges (the text form is what `mfpsec net show` prints).
    allow: list[str] = []
    deny: list[str] = []
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


@dataclass(frozen=True)
class NetView:
    policy: nf.Policy
    services: tuple[nf.Service, ...]
    device: nf.Device
    commands: list[dict[str, Any]] = field(repr=False)
    in_kernel: bool
    applied_at: str


_MOVING = ("handle", "packets", "bytes")


def _shape(listing: list[dict[str, Any]]) -> list[Any]:
    """A table listing without what changes by itself: object handles, counter values,
    and the dynamic sets of refused sources (filled by the kernel)."""
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


def _pack(r: nf.Range) -> str:
    return f"{r.family}:{r.start:x}-{r.end:x}"


def _unpack(text: str) -> nf.Range:
    family, _, bounds = text.partition(":")
    start, _, end = bounds.partition("-")
    r = nf.Range(4 if family == "4" else 6, int(start, 16), int(end, 16))
    if family not in ("4", "6") or not 0 <= r.start <= r.end < 1 << (32 if r.family == 4
                                                                     else 128):
        raise ValueError(f"stored range {text!r}")
    return r


def to_policy(stored: StoredPolicy, services: Sequence[nf.Service]) -> nf.Policy:
    names = [s.name for s in services]
    return nf.Policy(allow=tuple(map(_unpack, stored.allow)),
                     deny=tuple(map(_unpack, stored.deny)), quick=stored.quick,
                     enabled=frozenset(names if stored.enabled is None else stored.enabled))


def to_stored(policy: nf.Policy) -> StoredPolicy:
    return StoredPolicy(allow=list(map(_pack, policy.allow)),
                        deny=list(map(_pack, policy.deny)), quick=policy.quick,
                        enabled=sorted(policy.enabled))


_ENCODE = msgspec.json.Encoder().encode


class NetfilterService:
    def __init__(self, state: StateStore, filt: Netfilter, addresses: DeviceAddresses, *,
                 auditor: Auditor, clock: Clock, health: HealthRegistry,
                 settings: NetSettings) -> None:
        self._state = state
        self._filter = filt
        self._addresses = addresses
        self._auditor = auditor
        self._clock = clock
        self._health = health
        self.settings = settings
        self._lock = asyncio.Lock()
        self._policy = nf.Policy()
        self._device = nf.Device(settings.wired, settings.wireless)
        self._commands: list[dict[str, Any]] = []
        self._shape: list[Any] | None = None  # the table as last applied (_shape)
        self._table_known: bool | None = None  # our table is in the kernel (None: not looked)
        self._applied_at = ""
        self._reported: dict[str, int] = {}
        self._last_summary = 0.0

    # ---- state

    async def _load(self) -> nf.Policy:
        row = await self._state.run(lambda c: c.execute(
            "SELECT policy FROM net_policy WHERE id = 1").fetchone())
        stored = StoredPolicy() if row is None else msgspec.json.decode(
            str(row[0]), type=StoredPolicy)
        return to_policy(stored, self.settings.services)

    async def _store(self, text: str) -> None:
        await self._state.run(lambda c: c.execute(
            "INSERT INTO net_policy (id, policy) VALUES (1, ?) ON CONFLICT (id) DO UPDATE "
            "SET policy = excluded.policy", (text,)))

    async def _apply(self, policy: nf.Policy, device: nf.Device, *,
                     layout_may_differ: bool = False,
                     then: Callable[[], Awaitable[None]] | None = None
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
        staged = asyncio.create_task(asyncio.to_thread(
            durable.stage, rules_file, _ENCODE({"nftables": full})))
        try:
            try:
                await self._filter.apply(nf.for_existing_table(full) if self._table_known
                                         else full)
            except MfpsecError as exc:
                if not layout_may_differ or exc.code is not ErrorCode.NETWORK_APPLY_FAILED:
                    raise
                # A table of another layout (an older daemon's, or someone's edit): replaced
                # whole, the one time that is not atomic for packets.
                log.warning("netfilter_table_recreated", reason=exc.params.get("reason"))
                await self._filter.apply(nf.compile_ruleset(policy, self.settings.services,
                                                            device, recreate=True))
        except BaseException:
            with contextlib.suppress(Exception):
                (await staged).unlink(missing_ok=True)
            raise
        self._table_known = True
        self._commands = full
        self._shape = _shape(await self._filter.ruleset())
        self._policy, self._device = policy, device
        self._applied_at = rfc3339(self._clock)
        await asyncio.gather(asyncio.to_thread(durable.commit, await staged, rules_file),
                             *(() if then is None else (then(),)))
        self._health.set(COMPONENT, HealthState.OK, self._describe())
        return full

    def _describe(self) -> str:
        p = self._policy
        on = nf.ports(self.settings.services, p.enabled)
        return (f"{len(p.allow)} permitted and {len(p.deny)} refused range(s), quick filter "
                f"{'on' if p.quick else 'off'}, {len(on['tcp'])} TCP / {len(on['udp'])} UDP "
                f"port(s) open")

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
        await self._auditor.record(EventType.NETFILTER_CHANGE, Outcome.SUCCESS, DAEMON,
                                   "ip filter", step="start", rules=self._describe())

    async def run(self) -> None:
        """Follow address changes (the quick filter) and summarise refused connections."""
        changes = self._addresses.changes()
        pending: asyncio.Task[None] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(changes))
                done, _ = await asyncio.wait({pending}, timeout=self.settings.summary_interval_s)
                if done:
                    pending.result()
                    pending = None
                    await self._clock.sleep(self.settings.debounce_s)
                    await self.follow_addresses()
                await self.summarise_refused()
                await self.check_drift()
        finally:
            if pending is not None:
                pending.cancel()
            with contextlib.suppress(Exception):
                await changes.aclose()  # type: ignore[attr-defined]

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
        await self._auditor.record(EventType.NETFILTER_CHANGE, Outcome.SUCCESS, DAEMON,
                                   "quick filter", step="addresses",
                                   ranges=", ".join(str(r) for r in nf.quick_ranges(device)))
        return True

    async def check_drift(self) -> bool:
        """The kernel's table against the one last applied (rules, chains, sets and their
        elements; not handles, counters or the refused-source sets, which move by
        themselves). Changed or gone behind the daemon's back: audited as a failure (an
        alert by the default rules), shown in status, and the policy applied again."""
        async with self._lock:
            if self._shape is None:
                return False
            now = _shape(await self._filter.ruleset())
            if now == self._shape:
                return False
            why = ("the table was removed" if not now else
                   "the rules in the kernel differ from the last applied")
            log.error("netfilter_drift", reason=why)
            await self._auditor.record(EventType.NETFILTER_CHANGE, Outcome.FAILURE, DAEMON,
                                       "ip filter", step="drift", phase="drift", reason=why)
            try:
                await self._apply(self._policy, await self._device_now())
            except MfpsecError as exc:
                self._health.set(COMPONENT, HealthState.FAILED,
                                 f"{why} behind the daemon's back, and re-applying failed: "
                                 f"{exc.message}")
                raise
            self._health.set(COMPONENT, HealthState.DEGRADED,
                             f"{why} behind the daemon's back at {rfc3339(self._clock)}; "
                             f"re-applied: {self._describe()}")
            return True

    async def summarise_refused(self) -> None:
        """One audit record per interval with the sources refused since the last one."""
        now = self._clock.monotonic()
        if now - self._last_summary < self.settings.summary_interval_s:
            return
        self._last_summary = now
        counts = await self._filter.refused()
        fresh = {a: n - self._reported.get(a, 0) for a, n in counts.items()
                 if n > self._reported.get(a, 0)}
        self._reported = counts
        if not fresh:
            return
        top = sorted(fresh.items(), key=lambda kv: -kv[1])[:10]
        await self._auditor.record(
            EventType.NETFILTER_REFUSED, Outcome.SUCCESS, DAEMON, "ip filter",
            sources=len(fresh), packets=sum(fresh.values()),
            top=", ".join(f"{a} ({n})" for a, n in top))

    # ---- reading and changing

    async def view(self, *, just_applied: bool = False) -> NetView:
        loaded = True if just_applied else await self._filter.present()
        return NetView(self._policy, self.settings.services, self._device, self._commands,
                       loaded, self._applied_at)

    def preview(self, change: Callable[[nf.Policy], nf.Policy]) -> list[dict[str, Any]]:
        """The ruleset a change would apply (dry run): nothing is touched."""
        try:
            return nf.compile_ruleset(change(self._policy), self.settings.services,
                                      self._device)
        except ValueError as exc:
            raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None

    def _would_cut_off(self, policy: nf.Policy, address: str) -> bool:
        source = ipaddress.ip_address(address)
        return not any(nf.decide(policy, self.settings.services, self._device, source,
                                 proto="tcp", port=port)
                       for s in self.settings.services if s.name in _WEB
                       for proto, port in s.ports if proto == "tcp")

    async def change(self, what: str, change: Callable[[nf.Policy], nf.Policy],
                     subject: Subject, *, remote_address: str = "",
                     confirm: bool = False) -> NetView:
        async with self._auditor.event(EventType.NETFILTER_CHANGE, subject, "ip filter") as ev:
            ev.details["change"] = what
            async with self._lock:
                try:
                    policy = change(self._policy)
                    nf.check(policy, self.settings.services)
                except ValueError as exc:
                    raise MfpsecError(ErrorCode.NETWORK_RULES_INVALID, reason=str(exc)) from None
                if remote_address and not confirm and self._would_cut_off(policy,
                                                                          remote_address):
                    raise MfpsecError(ErrorCode.NETWORK_WOULD_LOCK_OUT, address=remote_address)
                # Encoded while the kernel applies it; stored only once it did. The
                # addresses are the watcher's (it re-applies when they change).
                stored = asyncio.create_task(asyncio.to_thread(
                    lambda: msgspec.json.encode(to_stored(policy)).decode()))

                async def store() -> None:
                    await self._store(await stored)

                try:
                    await self._apply(policy, self._device, then=store)
                except BaseException:
                    stored.cancel()
                    raise
            ev.details["rules"] = self._describe()
            ev.succeed()
        return await self.view(just_applied=True)

    async def reapply(self, subject: Subject) -> NetView:
        """Put the stored policy back into the kernel (e.g. after someone flushed it)."""
        async with self._auditor.event(EventType.NETFILTER_CHANGE, subject, "ip filter") as ev:
            ev.details["change"] = "apply"
            async with self._lock:
                await self._apply(self._policy, await self._device_now())
            ev.succeed()
        return await self.view(just_applied=True)

    def close(self) -> None:
        self._filter.close()
        self._addresses.close()


# ---- the changes the IPC offers, as functions of the policy


# (Ranges are parsed inside: a malformed one is RulesInvalid like any other refusal.)


def allow(text: str) -> Callable[[nf.Policy], nf.Policy]:
    return lambda p: replace(p, allow=(*p.allow, nf.parse_range(text)))


def deny(text: str) -> Callable[[nf.Policy], nf.Policy]:
    return lambda p: replace(p, deny=(*p.deny, nf.parse_range(text)))


def remove(text: str) -> Callable[[nf.Policy], nf.Policy]:
    def run(p: nf.Policy) -> nf.Policy:
        r = nf.parse_range(text)
        if r not in p.allow and r not in p.deny:
            raise ValueError(f"{text} is neither a permitted nor a refused range")
        return replace(p, allow=tuple(x for x in p.allow if x != r),
                       deny=tuple(x for x in p.deny if x != r))
    return run


def quick(on: bool) -> Callable[[nf.Policy], nf.Policy]:
    return lambda p: replace(p, quick=on)


def port(service: str, on: bool) -> Callable[[nf.Policy], nf.Policy]:
    return lambda p: replace(p, enabled=p.enabled | {service} if on
                             else p.enabled - {service})
