"""The USB service over a sysfs tree of files (the kernel's layout: bus/usb/devices links,
`authorized`, `authorized_default`, raw `descriptors`) with the recorded devices of
tests/data/usb: what it writes to the kernel, what it records, and how it fails."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Record, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.config.schema import UsbApprovedSection, UsbPortRuleSection, UsbSection
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.base.state import StateConnection
from mfpsecd.usb.backends.sysfs_usb import SysfsUsbBus
from mfpsecd.usb.ports import DeviceGone, SeenDevice
from mfpsecd.usb.posture import usb_ports
from mfpsecd.usb.service import UsbService
from tests.support.aio import sync
from tests.support.fakeclock import FakeClock
from tests.support.usb_devices import BUS, CCID, GADGET, HUB, KEYBOARD, STICK, FakeSysfs

ADMIN = Subject(origin="cli", user="admin", role="administrator")
# The board: the front port (1-1), the internal card reader's port (1-2).
PORTS = {"front": f"{BUS}/1-1", "card-reader": f"{BUS}/1-2"}
CARD_READER_ONLY = UsbSection(ports=[UsbPortRuleSection(["hid", "ccid"], "card-reader")])


@dataclass
class Stack:
    usb: UsbService
    sysfs: FakeSysfs
    auditor: Auditor
    health: HealthRegistry
    state: SqliteState

    async def records(self, type_: EventType = EventType.USB_DEVICE) -> list[Record]:
        return await self.auditor.query(AuditQuery(types=frozenset({type_})))

    async def last(self, device: str) -> Record:
        return [r for r in await self.records() if r.details.get("device") == device][-1]


class FlakyBus(SysfsUsbBus):
    """Devices that go away between being read and being decided."""

    vanishing: frozenset[str] = frozenset()

    def authorize(self, name: str, allowed: bool) -> None:
        if name in self.vanishing:
            raise DeviceGone(name)
        super().authorize(name, allowed)


def health_of(s: Stack) -> HealthState:
    component = s.health.get("usb")
    assert component is not None
    return component.state


@asynccontextmanager
async def stack(
    tmp: Path, section: UsbSection = CARD_READER_ONLY, *, sysfs: FakeSysfs | None = None
) -> AsyncIterator[Stack]:
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    sysfs = sysfs or FakeSysfs(tmp / "sys")
    usb = UsbService(
        FlakyBus(sysfs.root, clock, watch_udev=False),
        state,
        auditor=auditor,
        clock=clock,
        health=health,
        board_ports=PORTS,
        configured=section,
    )
    try:
        yield Stack(usb, sysfs, auditor, health, state)
    finally:
        await auditor.stop()
        await state.close()


@sync
async def test_start_locks_the_bus_and_judges_what_is_already_plugged_in(tmp_path: Path) -> None:
    sysfs = FakeSysfs(tmp_path / "sys")
    # Plugged in (and bound) before the daemon started, on an unlocked bus.
    sysfs.plug(STICK, authorized="1")  # 1-1: front
    sysfs.plug(GADGET, authorized="1")  # 1-4: a port the board does not name
    async with stack(tmp_path, sysfs=sysfs) as s:
        await s.usb.start()
        assert sysfs.authorized_default() == "0"
        assert sysfs.authorized("1-1") == "1"
        assert sysfs.authorized("1-4") == "0"  # its drivers are unbound now
        stick, gadget = await s.last("1-1"), await s.last("1-4")
        assert (
            stick.outcome is Outcome.SUCCESS
            and stick.object == "usb:0781:5567:4C530001231219112390"
        )
        assert stick.details["phase"] == "present at start"
        assert (
            stick.details["port"] == "front"
            and stick.details["rule"] == "port front (default rule)"
        )
        assert gadget.outcome is Outcome.FAILURE
        assert gadget.details["port"] == ""
        assert gadget.details["categories"] == "hid,network"
        assert "more than it claims" in str(gadget.details["reason"])
        view = await s.usb.view()
        assert view.locked and view.buses == ("usb1",) and not view.failure
        assert [(j.seen.name, j.decision.allowed, j.enforced) for j in view.devices] == [
            ("1-1", True, True),
            ("1-4", False, True),
        ]
        item = usb_ports(view)
        assert item.state.value == "on" and "card-reader: hid, ccid" in item.setting
        assert health_of(s) is HealthState.OK


@sync
async def test_hotplug_follows_each_ports_rule(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.usb.start()
        s.sysfs.plug(CCID)  # 1-2: the card reader's port allows CCID
        s.sysfs.plug(KEYBOARD)  # 1-3: default rule
        s.sysfs.plug(HUB)  # 1-5: hubs are allowed by default
        s.sysfs.plug(STICK, name="1-5.1", under="1-5")  # behind the hub: the hub's port
        s.sysfs.plug(STICK, name="1-2.1", under="1-2")  # behind the card reader's port
        await s.usb.rescan()
        for name in ("1-2", "1-3", "1-5", "1-5.1"):
            assert s.sysfs.authorized(name) == "1", name
            assert (await s.last(name)).details["phase"] == "connected"
        assert s.sysfs.authorized("1-2.1") == "0"
        refused = await s.last("1-2.1")
        assert refused.details["port"] == "card-reader"
        assert refused.details["reason"] == "mass_storage not allowed on port card-reader"
        # Unplugged: recorded, and gone from the list.
        s.sysfs.unplug("1-3")
        await s.usb.rescan()
        assert (await s.last("1-3")).details["phase"] == "removed"
        assert "1-3" not in {j.seen.name for j in (await s.usb.view()).devices}


@pytest.mark.sfr("FPT_FDI_EXP.1")
@pytest.mark.spec("N-4")
@sync
async def test_an_approved_identity_opens_a_port_but_never_a_network_interface(
    tmp_path: Path,
) -> None:
    section = UsbSection(
        ports=[
            UsbPortRuleSection(["ccid"], "card-reader"),
            UsbPortRuleSection(["mass_storage"], "front"),
        ],
        approved=[
            UsbApprovedSection("413c", "2113", port="card-reader"),  # the site's keyboard
            UsbApprovedSection("1d6b", "0104"),  # a gadget that claims to be approved
        ],
    )
    async with stack(tmp_path, section) as s:
        await s.usb.start()
        s.sysfs.plug(KEYBOARD, name="1-2")
        s.sysfs.plug(GADGET, name="1-1")
        await s.usb.rescan()
        assert s.sysfs.authorized("1-2") == "1"
        assert (await s.last("1-2")).details["rule"] == "approved[0]"
        assert s.sysfs.authorized("1-1") == "0"
        assert "network interface" in str((await s.last("1-1")).details["reason"])


@sync
async def test_malformed_descriptors_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.usb.start()
        s.sysfs.plug(KEYBOARD, descriptors=b"\x12\x01\x00\x02")  # cut short
        s.sysfs.plug(STICK, name="1-6", descriptors=b"\x12\x01" + b"\xff" * 60)
        await s.usb.rescan()
        for name in ("1-3", "1-6"):
            assert s.sysfs.authorized(name) == "0"
            r = await s.last(name)
            assert r.outcome is Outcome.FAILURE and r.object.startswith("usb:????:????")
            assert str(r.details["reason"]).startswith("malformed descriptors: ")


@sync
async def test_a_device_that_goes_away_mid_decision_is_recorded_and_forgotten(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        await s.usb.start()
        s.sysfs.plug(KEYBOARD)
        s.sysfs.plug(CCID)
        bus = s.usb._bus
        assert isinstance(bus, FlakyBus)
        bus.vanishing = frozenset({"1-3"})
        await s.usb.rescan()
        gone = await s.last("1-3")
        assert gone.details["error"] == "the device went away"
        assert s.sysfs.authorized("1-2") == "1"  # the others are decided all the same
        view = await s.usb.view()
        assert [j.seen.name for j in view.devices] == ["1-2"] and not view.failure


@sync
async def test_a_decision_the_kernel_refuses_fails_closed_and_shows(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.usb.start()
        name = s.sysfs.plug(KEYBOARD)
        # An `authorized` that cannot be written (EISDIR stands for the kernel's refusal).
        node = (s.sysfs.links / name).resolve()
        (node / "authorized").unlink()
        (node / "authorized").mkdir()
        await s.usb.rescan()
        r = await s.last(name)
        assert r.outcome is Outcome.FAILURE and "the kernel refused authorized=1" in str(
            r.details["error"]
        )
        view = await s.usb.view()
        assert "1-3" in view.failure and not view.devices[0].enforced
        assert health_of(s) is HealthState.FAILED
        assert usb_ports(view).state.value == "off"
        # Writable again: the next rescan puts the decision in and the failure clears.
        (node / "authorized").rmdir()
        (node / "authorized").write_text("0\n")
        await s.usb.rescan()
        assert s.sysfs.authorized(name) == "1"
        assert (await s.last(name)).details["phase"] == "retry"
        assert health_of(s) is HealthState.OK


@sync
async def test_drift_is_put_back_and_recorded(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.sysfs.plug(GADGET)
        await s.usb.start()
        s.sysfs.set_authorized("1-4", "1")  # someone authorized it behind the daemon's back
        s.sysfs.set_authorized("usb1", "1")
        (s.sysfs.root / BUS / "authorized_default").write_text("1\n")
        await s.usb.rescan()
        assert s.sysfs.authorized("1-4") == "0"
        assert (await s.last("1-4")).details["phase"] == "drift"
        assert s.sysfs.authorized_default() == "0"


@pytest.mark.sfr("FMT_MSA.1")
@pytest.mark.spec("A-10")
@sync
async def test_a_new_policy_applies_to_connected_devices_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    sysfs = FakeSysfs(tmp_path / "sys")
    sysfs.plug(KEYBOARD)
    sysfs.plug(STICK)
    async with stack(tmp_path, sysfs=sysfs) as s:
        await s.usb.start()
        assert sysfs.authorized("1-3") == "1"
        new = UsbSection(
            ports=[UsbPortRuleSection(["mass_storage"], "front")],
            default=UsbPortRuleSection(["ccid"]),
        )
        view = await s.usb.set_policy(new, ADMIN)
        assert view.policy.by == "admin" and view.policy.section == new
        assert sysfs.authorized("1-3") == "0"  # keyboards are no longer allowed there
        assert sysfs.authorized("1-1") == "1"
        assert (await s.last("1-3")).details["phase"] == "policy change"
        (change,) = await s.records(EventType.USB_POLICY)
        assert change.subject.user == "admin"
        assert change.details["changed"] == "ports, default.allow"
        with pytest.raises(MfpsecError) as exc:
            await s.usb.set_policy(UsbSection(ports=[UsbPortRuleSection(["hid"], "rear")]), ADMIN)
        assert exc.value.code is ErrorCode.CONFIG_INVALID
        assert exc.value.params["key"] == "ports[0].id"
        assert (await s.usb.view()).policy.section == new  # unchanged
    async with stack(tmp_path, sysfs=sysfs) as s:  # the daemon again, same state
        await s.usb.start()
        assert s.usb.policy.section == new and s.usb.policy.by == "admin"
        assert sysfs.authorized("1-3") == "0"


@sync
async def test_an_administrator_allows_or_blocks_one_device_until_it_is_unplugged(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        s.sysfs.plug(GADGET)
        s.sysfs.plug(KEYBOARD)
        await s.usb.start()
        judged = await s.usb.decide_once("1-4", True, ADMIN)
        assert judged.by == "administrator" and judged.decision.rule == "administrator"
        assert s.sysfs.authorized("1-4") == "1"
        r = await s.last("1-4")
        assert r.subject.user == "admin" and r.details["phase"] == "administrator"
        await s.usb.rescan()  # a one-shot decision is not drift
        assert s.sysfs.authorized("1-4") == "1"
        await s.usb.decide_once("1-3", False, ADMIN)
        assert s.sysfs.authorized("1-3") == "0"
        with pytest.raises(MfpsecError) as exc:
            await s.usb.decide_once("1-9", True, ADMIN)
        assert exc.value.code is ErrorCode.USB_DEVICE_NOT_FOUND
        # Unplugged and plugged in again: the policy decides again.
        s.sysfs.unplug("1-4")
        await s.usb.rescan()
        s.sysfs.plug(GADGET)
        await s.usb.rescan()
        assert s.sysfs.authorized("1-4") == "0"


def test_a_policy_for_a_port_the_board_does_not_have_is_refused_by_key_path() -> None:
    from mfpsecd.usb.service import check_ports

    with pytest.raises(MfpsecError) as exc:
        check_ports(
            UsbSection(
                ports=[UsbPortRuleSection(["hid"], "front"), UsbPortRuleSection(["hid"], "x")]
            ),
            PORTS,
            "usb.",
        )
    assert exc.value.params["key"] == "usb.ports[1].id"
    assert "card-reader, front" in str(exc.value.params["reason"])


def test_seen_device_fields_come_from_sysfs(tmp_path: Path) -> None:
    sysfs = FakeSysfs(tmp_path / "sys")
    sysfs.plug(CCID)
    bus = SysfsUsbBus(sysfs.root, FakeClock(), watch_udev=False)
    (dev,) = bus.devices()
    assert dev == SeenDevice(
        name="1-2",
        path=f"{BUS}/1-2",
        descriptors=dev.descriptors,
        serial="21120937200412",
        manufacturer="SCM Microsystems Inc.",
        product="SCR33x USB Smart Card Reader",
        authorized=False,
    )
    assert len(dev.descriptors) == 18 + 9 + 9 + 54 + 7 * 3


@sync
async def test_a_lock_the_kernel_refused_at_start_is_tried_again(tmp_path: Path) -> None:
    """At boot the udev rule may not have handed the switch over yet: the next rescan
    locks the bus, and status says FAILED until then."""
    sysfs = FakeSysfs(tmp_path / "sys")
    switch = sysfs.root / BUS / "authorized_default"
    switch.unlink()
    switch.mkdir()  # not writable (EISDIR stands for EACCES)
    async with stack(tmp_path, sysfs=sysfs) as s:
        await s.usb.start()
        assert health_of(s) is HealthState.FAILED
        assert "authorized_default" in (await s.usb.view()).failure
        switch.rmdir()
        switch.write_text("-1\n")
        await s.usb.rescan()
        assert sysfs.authorized_default() == "0"
        view = await s.usb.view()
        assert view.locked and not view.failure and health_of(s) is HealthState.OK


def _store_policy(text: str, conn: StateConnection) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO usb_policy (id, policy, by_user, at) "
        "VALUES (1, ?, 'admin', '2026-01-01T00:00:00Z')",
        (text,),
    )


@sync
async def test_a_stored_policy_that_was_tampered_with_is_refused_and_recorded(
    tmp_path: Path,
) -> None:
    """Someone with the disk rewrites the stored policy to open the card reader's port:
    it does not decode (or names no board port), the configured one applies."""
    sysfs = FakeSysfs(tmp_path / "sys")
    sysfs.plug(STICK, name="1-2")  # mass storage on the card reader's port
    async with stack(tmp_path, sysfs=sysfs) as s:
        for forged in (
            '{"ports": [{"id": "card-reader", "allow": ["mass_storage", "x"]}]}',
            '{"ports": [{"id": "rear", "allow": ["mass_storage"]}]}',
        ):
            await s.state.run(functools.partial(_store_policy, forged))
            usb = UsbService(
                SysfsUsbBus(sysfs.root, s.usb._clock, watch_udev=False),
                s.state,
                auditor=s.auditor,
                clock=s.usb._clock,
                health=s.health,
                board_ports=PORTS,
                configured=CARD_READER_ONLY,
            )
            await usb.start()
            assert usb.policy.by == "configuration"
            assert sysfs.authorized("1-2") == "0"
        refused = await s.records(EventType.USB_POLICY)
        assert [r.outcome for r in refused] == [Outcome.FAILURE, Outcome.FAILURE]
        assert all("the configured one does" in str(r.details["reason"]) for r in refused)
