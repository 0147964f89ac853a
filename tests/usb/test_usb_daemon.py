"""U-1..U-4 on the daemon: recorded USB devices (tests/data/usb) on a umockdev testbed,
plugged in before the daemon starts and while it runs; the daemon locks the bus, writes
each device's `authorized`, and serves io.mfpsecd.Usb, `mfpsec usb` and the posture."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfpsecd.audit import api as audit
from mfpsecd.client import Connection
from mfpsecd.system import api as system
from mfpsecd.usb import api as usb
from tests.support import daemon as ds
from tests.support.umockdev_testbed import UmockdevBed, requires_umockdev
from tests.support.usb_devices import BUS, CCID, GADGET, KEYBOARD, STICK

pytestmark = requires_umockdev


class UsbBed(UmockdevBed):
    def __init__(self) -> None:
        super().__init__("umockdev_usb.py")

    def attribute(self, device: str, name: str) -> str:
        return (Path(self.dir) / "sys" / BUS / device / name).read_text().strip()

    def wait_authorized(self, device: str, value: str) -> None:
        deadline = time.monotonic() + 30
        while self.attribute(device, "authorized") != value:
            assert time.monotonic() < deadline, f"{device}: authorized never became {value}"
            time.sleep(0.05)


@pytest.fixture
def bed() -> Iterator[UsbBed]:
    b = UsbBed()
    try:
        yield b
    finally:
        b.close()


def _records(conn: Connection, device: str) -> list[audit.AuditEntry]:
    got = conn.call(audit.QUERY_AUDIT, audit.AuditQueryParams(types=["usb.device"]))
    return [e for e in got.entries if e.details.get("device") == device]


@pytest.mark.sfr("FMT_SMF.1")
@pytest.mark.spec("A-2", "F-3", "L-3", "N-2", "U-4")
def test_the_daemon_enforces_the_usb_policy_on_recorded_devices(
    short_tmp: Path, bed: UsbBed
) -> None:
    bed.send("plug", STICK, "1")  # 1-1, bound before the daemon started
    bed.send("plug", GADGET, "1")  # 1-4: keyboard + CDC-ECM network adapter
    with ds.running(
        short_tmp / "d",
        tpm="none",
        argv_prefix=["umockdev-wrapper"],
        env={"UMOCKDEV_DIR": bed.dir},
        board={
            "extra": {"paths": {"sys_root": "/sys"}},
            "usb_ports": [f"{BUS}/1-1", f"{BUS}/1-2"],  # port0: front, port1: card reader
        },
        config={"usb": {"ports": [{"id": "port1", "allow": ["ccid"]}]}},
    ) as d:
        assert (Path(bed.dir) / "sys" / BUS / "authorized_default").read_text().strip() == "0"
        assert bed.attribute("1-1", "authorized") == "1"
        assert bed.attribute("1-4", "authorized") == "0"  # unbound at start
        bed.send("plug", KEYBOARD, "0")  # 1-3, into the locked bus
        bed.send("plug", CCID, "0")  # 1-2, the card reader's port
        bed.wait_authorized("1-3", "1")
        bed.wait_authorized("1-2", "1")

        shown = ds.mfpsec(d.socket_path, "usb", "show")
        assert shown.returncode == 0, shown.stderr
        assert "usb1 locked" in shown.stdout
        assert "1-4" in shown.stdout and "REFUSED" in shown.stdout
        assert "Composite Gadget" in shown.stdout and "hid, network" in shown.stdout

        with Connection(d.socket_path) as conn:
            devices = conn.call(usb.LIST_DEVICES)
            assert [(x.device, x.port, x.allowed) for x in devices.devices] == [
                ("1-1", "port0", True),
                ("1-2", "port1", True),
                ("1-3", "", True),
                ("1-4", "", False),
            ]
            (gadget,) = _records(conn, "1-4")
            assert gadget.outcome == "failure" and gadget.object == "usb:1d6b:0104:0123456789"
            assert gadget.details["phase"] == "present at start"
            posture = conn.call(system.GET_POSTURE)
            (item,) = [i for i in posture.items if i.id == "usb-ports"]
            assert item.state.value == "on" and "port1: ccid" in item.setting

            # The administrator narrows the policy: the keyboard loses its drivers now.
            policy = conn.call(
                usb.SET_POLICY,
                usb.PolicyParams(
                    ports=[usb.PortRule("port1", [usb.Use.CCID])],
                    default=[usb.Use.MASS_STORAGE, usb.Use.HUB],
                ),
            )
            assert policy.set_by == "system" and policy.board_ports == ["port0", "port1"]
            bed.wait_authorized("1-3", "0")
            assert bed.attribute("1-1", "authorized") == "1"
            assert _records(conn, "1-3")[-1].details["phase"] == "policy change"

        allowed = ds.mfpsec(d.socket_path, "usb", "allow", "1-4")
        assert allowed.returncode == 0, allowed.stderr
        assert "administrator" in allowed.stdout
        bed.wait_authorized("1-4", "1")
        missing = ds.mfpsec(d.socket_path, "usb", "block", "9-9")
        assert missing.returncode != 0 and "io.mfpsecd.Usb.DeviceNotFound" in missing.stderr

        bed.send("unplug", "1-4")
        with Connection(d.socket_path) as conn:
            deadline = time.monotonic() + 30
            while _records(conn, "1-4")[-1].details["phase"] != "removed":
                assert time.monotonic() < deadline, "the removal was never recorded"
                time.sleep(0.1)
            assert "1-4" not in {x.device for x in conn.call(usb.LIST_DEVICES).devices}
