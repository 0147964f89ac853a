"""The USB port policy in force (SPEC U-1..U-4): each device on the board's buses is
judged from its own descriptors when it appears, the decision goes to the kernel
(`authorized`), and into the audit log with the rule that made it.

The policy is the configuration's [usb] until an administrator sets one over IPC; that
one is kept in the state store and wins from then on (GetPolicy says which is in force).
A new policy is applied to the devices already connected too: a device it refuses loses
its drivers at once. An administrator may also allow or block one connected device once;
that lasts until the device is unplugged or the policy changes.

Fails closed: the buses hold authorized_default = 0, so a device nobody decided has no
driver; a device whose descriptors do not parse is refused; a device whose decision the
kernel would not take is reported (health, status) and stays as the kernel keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

import msgspec
import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.model import setting_changes
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.config.schema import UsbSection
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.usb.model.descriptors import UsbDevice, parse
from mfpsecd.usb.model.policy import Decision, UsbPolicy, decide
from mfpsecd.usb.ports import DeviceGone, SeenDevice, UsbBus
from mfpsecd.usb.settings import policy_from

log = structlog.get_logger("mfpsecd.usb")
HEALTH = "usb"


@dataclass(frozen=True)
class Judged:
    """A connected device and what was decided for it."""

    seen: SeenDevice
    port: str  # the board's port id, "" when on none the board names
    device: UsbDevice | None  # None: its descriptors do not parse
    decision: Decision
    by: str  # "policy", or "administrator" for a one-shot Allow / Block
    at: str  # RFC 3339 UTC
    enforced: bool  # the kernel holds the decision

    @property
    def identity(self) -> str:
        """vendor:product[:serial], as the audit record's object and the alert key."""
        ident = self.device.identity if self.device is not None else "????:????"
        return f"{ident}:{self.seen.serial}" if self.seen.serial else ident


@dataclass(frozen=True)
class PolicySource:
    """Where the policy in force comes from."""

    section: UsbSection
    by: str  # "configuration", or the administrator who set it
    at: str  # "" for the configuration's


@dataclass(frozen=True)
class UsbView:
    devices: tuple[Judged, ...]
    buses: tuple[str, ...]
    locked: bool  # every bus holds authorized_default = 0
    policy: PolicySource
    board_ports: tuple[str, ...]
    failure: str  # why the kernel does not hold the policy ("" when it does)


def port_of(path: str, board_ports: Mapping[str, str]) -> str:
    """The board's port a device path is on (behind a hub on that port too): the longest
    port path that is the device's or an ancestor of it."""
    best, best_len = "", -1
    path = path.strip("/")
    for port, given in board_ports.items():
        where = given.strip("/")
        if (path == where or path.startswith(where + "/")) and len(where) > best_len:
            best, best_len = port, len(where)
    return best


def check_ports(section: UsbSection, board_ports: Mapping[str, str], key: str) -> UsbPolicy:
    """The policy of a section, or CONFIG_INVALID with the key path for a rule naming a
    port the board does not have: it would never apply, and the port would silently
    follow the default rule."""
    for n, rule in enumerate(section.ports):
        if rule.id not in board_ports:
            known = ", ".join(sorted(board_ports)) or "none"
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                key=f"{key}ports[{n}].id",
                reason=f"the board has no USB port {rule.id!r} (its ports: {known})",
            )
    return policy_from(section)


def _stored(section: UsbSection) -> str:
    """The section as the state store keeps it: what [usb] would say (the default rule
    names no port)."""
    doc = msgspec.to_builtins(section)
    doc["default"].pop("id", None)
    return msgspec.json.encode(doc).decode()


def _load(conn: StateConnection) -> tuple[str, str, str] | None:
    row = conn.execute("SELECT policy, by_user, at FROM usb_policy WHERE id = 1").fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def _save(conn: StateConnection, policy: str, by: str, at: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO usb_policy (id, policy, by_user, at) VALUES (1, ?, ?, ?)",
        (policy, by, at),
    )


class UsbService:
    def __init__(
        self,
        bus: UsbBus,
        state: StateStore,
        *,
        auditor: Auditor,
        clock: Clock,
        health: HealthRegistry,
        board_ports: Mapping[str, str],
        configured: UsbSection,
    ) -> None:
        self._bus = bus
        self._state = state
        self._auditor = auditor
        self._clock = clock
        self._health = health
        self._board_ports = dict(board_ports)
        self._source = PolicySource(configured, "configuration", "")
        self._policy: UsbPolicy = policy_from(configured)
        self._devices: dict[str, Judged] = {}
        self._buses: tuple[str, ...] = ()
        self._lock_failure = ""
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """The stored policy (else the configuration's), the buses locked, and every
        device present judged."""
        stored = await self._state.run(_load)
        if stored is not None:
            try:
                section = msgspec.json.decode(stored[0], type=UsbSection)
                policy = check_ports(section, self._board_ports, "usb_policy.")
            except (msgspec.ValidationError, MfpsecError) as exc:
                # A stored policy the board no longer fits: the configuration's applies,
                # and the log says so (the administrator sets one again).
                log.error("usb_stored_policy_refused", reason=str(exc))
                await self._auditor.record(
                    EventType.USB_POLICY,
                    Outcome.FAILURE,
                    DAEMON,
                    "usb policy",
                    phase="start",
                    reason=f"the stored policy does not apply: {exc}; the configured one does",
                )
            else:
                self._source = PolicySource(section, stored[1], stored[2])
                self._policy = policy
        async with self._lock:
            await self._lock_buses()
            await self._judge_all("present at start")
        self._report_health()

    async def run(self) -> None:
        async for _ in self._bus.changes():
            await self.rescan()

    async def rescan(self) -> None:
        async with self._lock:
            seen = {d.name: d for d in await asyncio.to_thread(self._bus.devices)}
            for name in sorted(set(self._devices) - set(seen)):
                await self._removed(self._devices.pop(name))
            for name, dev in sorted(seen.items()):
                known = self._devices.get(name)
                if known is None or known.seen.descriptors != dev.descriptors:
                    await self._judge(dev, "connected")
                elif not known.enforced:
                    await self._retry(replace(known, seen=dev))
                elif dev.authorized != known.decision.allowed:
                    # Someone wrote `authorized` behind the daemon's back: the decision
                    # is put back, and the log says so.
                    await self._enforce(replace(known, seen=dev), "drift", DAEMON)
            # Locked again when it failed (the udev rule had not run yet at boot), when no
            # bus was there to lock (a controller found later), or a bus was reset.
            if (
                self._lock_failure
                or not self._buses
                or not await asyncio.to_thread(self._bus.locked)
            ):
                await self._lock_buses()
        self._report_health()

    async def view(self) -> UsbView:
        locked = await asyncio.to_thread(self._bus.locked) if self._buses else False
        return UsbView(
            tuple(self._devices[n] for n in sorted(self._devices)),
            self._buses,
            locked,
            self._source,
            tuple(sorted(self._board_ports)),
            self.failure(),
        )

    @property
    def policy(self) -> PolicySource:
        return self._source

    async def set_policy(self, section: UsbSection, subject: Subject) -> UsbView:
        """Check, store, and apply to the connected devices too."""
        policy = check_ports(section, self._board_ports, "")
        async with self._lock:
            at = rfc3339(self._clock)
            by = subject.user or subject.origin
            await self._state.run(lambda c: _save(c, _stored(section), by, at))
            old, self._source, self._policy = self._source, PolicySource(section, by, at), policy
            await self._auditor.record(
                EventType.USB_POLICY,
                Outcome.SUCCESS,
                subject,
                "usb policy",
                phase="set",
                **setting_changes.as_details(setting_changes.changes(old.section, section)),
            )
            await self._judge_all("policy change")
        self._report_health()
        return await self.view()

    async def decide_once(self, name: str, allowed: bool, subject: Subject) -> Judged:
        """An administrator's Allow / Block of one connected device, until it is
        unplugged or the policy changes."""
        async with self._lock:
            known = self._devices.get(name)
            if known is None:
                raise MfpsecError(ErrorCode.USB_DEVICE_NOT_FOUND, device=name)
            what = "allowed" if allowed else "blocked"
            decision = replace(
                known.decision,
                allowed=allowed,
                rule="administrator",
                reason=f"{what} once by {subject.user or subject.origin}",
            )
            judged = replace(known, decision=decision, by="administrator", at=rfc3339(self._clock))
            result = await self._enforce(judged, "administrator", subject)
        self._report_health()
        if result is None:
            raise MfpsecError(ErrorCode.USB_DEVICE_NOT_FOUND, device=name)
        return result

    async def _lock_buses(self) -> None:
        try:
            self._buses = tuple(await asyncio.to_thread(self._bus.lock))
            self._lock_failure = ""
        except OSError as exc:
            self._lock_failure = f"the buses refused authorized_default=0: {exc.strerror or exc}"
            log.error("usb_lock_failed", reason=self._lock_failure)

    async def _retry(self, judged: Judged) -> None:
        """A decision the kernel did not take before: tried again at each rescan,
        recorded once it holds (its failure was recorded the first time)."""
        with contextlib.suppress(OSError, DeviceGone):
            await asyncio.to_thread(self._bus.authorize, judged.seen.name, judged.decision.allowed)
            self._devices[judged.seen.name] = replace(judged, enforced=True)
            await self._record(replace(judged, enforced=True), "retry", DAEMON, error="")

    async def _judge_all(self, phase: str) -> None:
        devices = await asyncio.to_thread(self._bus.devices)
        self._devices = {n: j for n, j in self._devices.items() if n in {d.name for d in devices}}
        for dev in devices:
            await self._judge(dev, phase)

    async def _judge(self, seen: SeenDevice, phase: str) -> None:
        port = port_of(seen.path, self._board_ports)
        where = port or seen.name  # a port the board does not name: the kernel's name
        device: UsbDevice | None = None
        try:
            device = parse(seen.descriptors)
        except ValueError as exc:
            decision = Decision(False, f"port {where}", f"malformed descriptors: {exc}", ())
        else:
            decision = decide(self._policy, where, device, seen.serial)
        judged = Judged(seen, port, device, decision, "policy", rfc3339(self._clock), False)
        await self._enforce(judged, phase, DAEMON)

    async def _enforce(self, judged: Judged, phase: str, subject: Subject) -> Judged | None:
        """Write the decision and record it. → the device as decided, None when it went
        away meanwhile."""
        name, allowed = judged.seen.name, judged.decision.allowed
        error = ""
        try:
            await asyncio.to_thread(self._bus.authorize, name, allowed)
        except DeviceGone:
            self._devices.pop(name, None)
            log.info("usb_device_gone", device=name, phase=phase)
            await self._record(judged, phase, subject, error="the device went away")
            return None
        except OSError as exc:
            error = f"the kernel refused authorized={int(allowed)}: {exc.strerror or exc}"
            log.error("usb_authorize_failed", device=name, reason=error)
        judged = replace(judged, enforced=not error)
        self._devices[name] = judged
        await self._record(judged, phase, subject, error=error)
        return judged

    async def _record(self, j: Judged, phase: str, subject: Subject, *, error: str) -> None:
        d, s = j.decision, j.seen
        await self._auditor.record(
            EventType.USB_DEVICE,
            Outcome.SUCCESS if d.allowed and not error else Outcome.FAILURE,
            subject,
            f"usb:{j.identity}",
            phase=phase,
            allowed=d.allowed,
            device=s.name,
            port=j.port,
            rule=d.rule,
            reason=d.reason,
            categories=",".join(c.value for c in d.categories),
            manufacturer=s.manufacturer,
            product=s.product,
            **({"error": error} if error else {}),
        )

    async def _removed(self, j: Judged) -> None:
        log.info("usb_device_removed", device=j.seen.name, identity=j.identity)
        await self._auditor.record(
            EventType.USB_DEVICE,
            Outcome.SUCCESS,
            DAEMON,
            f"usb:{j.identity}",
            phase="removed",
            allowed=j.decision.allowed,
            device=j.seen.name,
            port=j.port,
        )

    def failure(self) -> str:
        """Why the kernel does not hold the policy ("" when it does)."""
        stuck = [j.seen.name for j in self._devices.values() if not j.enforced]
        if stuck:
            what = f"the kernel did not take the decision for {', '.join(sorted(stuck))}"
            return f"{self._lock_failure}; {what}" if self._lock_failure else what
        return self._lock_failure

    def _report_health(self) -> None:
        if failure := self.failure():
            self._health.set(HEALTH, HealthState.FAILED, failure)
        elif not self._buses:
            self._health.set(HEALTH, HealthState.OK, "no USB bus on this board")
        else:
            allowed = sum(j.decision.allowed for j in self._devices.values())
            self._health.set(
                HEALTH,
                HealthState.OK,
                f"{len(self._buses)} bus(es) locked; {allowed} device(s) allowed, "
                f"{len(self._devices) - allowed} refused; policy from {self._source.by}",
            )
