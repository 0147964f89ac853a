"""SPEC U-1, U-2: the USB decision as pure logic, over descriptors as devices send them.

Property tests (hypothesis) hold the rule for any device: allowed exactly when every
interface of every configuration is allowed on its port, whatever the order; the parser
answers any bytes with a device or a ValueError, never anything else."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfpsecd.usb.model import descriptors as d
from mfpsecd.usb.model.policy import (
    DEFAULT_RULE,
    ApprovedDevice,
    Category,
    PortRule,
    UsbPolicy,
    category,
    decide,
)

# A composite device as it comes off the wire: a keyboard (HID, with its class descriptor
# and an interrupt endpoint) joined by an Interface Association to a CDC-ECM network
# function (communication interface with CDC functional descriptors, data interface with
# two alternate settings and bulk endpoints). The BadUSB pattern.
HID_PLUS_ECM = bytes.fromhex(
    "12 01 0002 EF 02 01 40 3412 7856 0001 01 02 03 01"  # device: misc/IAD, 1234:5678
    "09 02 7100 03 01 00 A0 32"  # configuration 1, 3 interfaces, wTotalLength 0x71
    "09 04 00 00 01 03 01 01 00"  # interface 0: HID boot keyboard
    "09 21 1101 00 01 22 3F00"  # HID descriptor
    "07 05 81 03 0800 0A"  # endpoint 0x81 interrupt
    "08 0B 01 02 02 06 00 00"  # IAD: interfaces 1-2, CDC ECM
    "09 04 01 00 01 02 06 00 00"  # interface 1: CDC communication, ECM
    "05 24 00 1001"  # CDC header
    "05 24 06 01 02"  # CDC union
    "0D 24 0F 04 00000000 EA05 0000 00"  # CDC Ethernet networking
    "07 05 82 03 1000 09"  # endpoint 0x82 interrupt
    "09 04 02 00 00 0A 00 00 00"  # interface 2 alt 0: CDC data, no endpoints
    "09 04 02 01 02 0A 00 00 00"  # interface 2 alt 1: CDC data
    "07 05 83 02 0002 00"  # bulk in
    "07 05 03 02 0002 00".replace(" ", "")  # bulk out
)
# 0x71 = 113: fix the wTotalLength above if the body changes.
assert len(HID_PLUS_ECM) == 18 + 0x71


def _device(
    *interfaces: tuple[int, int, int], vendor: int = 0x0781, product: int = 0x5567
) -> d.UsbDevice:
    return d.UsbDevice(
        vendor,
        product,
        0,
        0,
        0,
        0x0200,
        0x0100,
        tuple(d.Interface(1, n, 0, c, s, p) for n, (c, s, p) in enumerate(interfaces)),
    )


STICK = _device((0x08, 0x06, 0x50))  # bulk-only mass storage
KEYBOARD = _device((0x03, 0x01, 0x01), vendor=0x046D, product=0xC31C)
CCID_READER = _device((0x0B, 0x00, 0x00), vendor=0x076B, product=0x3021)


def test_a_composite_keyboard_with_a_network_function_is_parsed_whole_and_refused() -> None:
    dev = d.parse(HID_PLUS_ECM)
    assert dev.identity == "1234:5678"
    assert [(i.number, i.alternate, i.cls) for i in dev.interfaces] == [
        (0, 0, 0x03),
        (1, 0, 0x02),
        (2, 0, 0x0A),
        (2, 1, 0x0A),
    ]
    verdict = decide(UsbPolicy(), "front", dev)
    assert not verdict.allowed
    assert verdict.categories == (Category.HID, Category.NETWORK)
    assert "mixes hid (allowed) with network (refused" in verdict.reason
    # A port that allows keyboards and network adapters both takes it.
    both = UsbPolicy({"service": PortRule(frozenset({Category.HID, Category.NETWORK}))})
    assert decide(both, "service", dev).allowed


def test_the_usual_devices_on_the_default_rule() -> None:
    policy = UsbPolicy()
    for dev in (STICK, KEYBOARD, CCID_READER, _device((0x09, 0, 0)), _device((0x07, 1, 2))):
        assert decide(policy, "front", dev).allowed, dev
    for dev, why in (
        (_device((0x02, 0x06, 0)), "network not allowed"),
        (_device((0xFF, 0xFF, 0xFF)), "other not allowed"),
        (_device((0xFE, 0x01, 0x02)), "other not allowed"),  # DFU: firmware download
        (_device((0xEF, 0x04, 0x01)), "network not allowed"),  # RNDIS
        (_device(), "no interface"),
    ):
        verdict = decide(policy, "front", dev)
        assert not verdict.allowed and why in verdict.reason, (dev, verdict)


def test_a_port_can_be_narrowed_and_the_rule_that_decided_is_named() -> None:
    policy = UsbPolicy({"card-reader": PortRule(frozenset({Category.HID, Category.CCID}))})
    stick = decide(policy, "card-reader", STICK)
    assert not stick.allowed and stick.rule == "port card-reader"
    assert stick.reason == "mass_storage not allowed on port card-reader"
    assert decide(policy, "card-reader", KEYBOARD).allowed
    assert decide(policy, "front", STICK).rule == "port front (default rule)"


def test_an_approved_identity_is_allowed_but_never_opens_a_network_interface() -> None:
    reader = _device((0xFF, 0x00, 0x00), vendor=0x0C27, product=0x3BFA)  # vendor specific
    approved = UsbPolicy(approved=(ApprovedDevice(0x0C27, 0x3BFA, serial="A1", port="rear"),))
    assert decide(approved, "rear", reader, serial="A1").allowed
    assert decide(approved, "rear", reader, serial="A1").rule == "approved[0]"
    assert not decide(approved, "rear", reader, serial="B2").allowed  # another serial
    assert not decide(approved, "front", reader, serial="A1").allowed  # another port
    spoof = _device((0x03, 1, 1), (0x02, 0x06, 0), vendor=0x0C27, product=0x3BFA)
    verdict = decide(approved, "rear", spoof, serial="A1")
    assert not verdict.allowed and "network interface" in verdict.reason


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "device descriptor: 0 bytes"),
        (HID_PLUS_ECM[:17], "device descriptor: 17 bytes"),
        (b"\x12\x02" + HID_PLUS_ECM[2:], "device descriptor: type 2"),
        (HID_PLUS_ECM[:17] + b"\x00", "0 configurations"),
        (HID_PLUS_ECM[:18], "configuration at byte 18: 0 bytes"),
        (HID_PLUS_ECM[:-1], "runs past"),
        (HID_PLUS_ECM[:18] + b"\x09\x02\x0b\x00\x01\x01\x00\xa0\x32\x00\x04", "length 0 does"),
        (
            HID_PLUS_ECM[:18] + b"\x09\x02\x0e\x00\x01\x01\x00\xa0\x32\x05\x04\x00\x00\x01",
            "length 5",
        ),
    ],
)
def test_malformed_descriptors_are_refused_saying_what(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        d.parse(data)


_INTERFACES = st.lists(
    st.tuples(
        st.sampled_from([1, 2]), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)
    ),
    max_size=12,
)
_ALLOW = st.frozensets(st.sampled_from(list(Category)))


def _build(spec: list[tuple[int, int, int, int]], vendor: int, product: int) -> d.UsbDevice:
    return d.UsbDevice(
        vendor,
        product,
        0,
        0,
        0,
        0x0200,
        0x0100,
        tuple(sorted({d.Interface(c, n, 0, k, s, p) for n, (c, k, s, p) in enumerate(spec)})),
    )


@given(_INTERFACES, _ALLOW, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_allowed_exactly_when_every_interface_is_allowed(
    spec: list[tuple[int, int, int, int]], allow: frozenset[Category], vendor: int, product: int
) -> None:
    dev = _build(spec, vendor, product)
    policy = UsbPolicy({"p": PortRule(allow)})
    verdict = decide(policy, "p", dev)
    offered = {category(i) for i in dev.interfaces}
    assert verdict.allowed == (bool(offered) and offered <= allow)
    # Order of the interfaces never matters, and what the device sends parses back.
    reordered = dataclasses.replace(dev, interfaces=tuple(reversed(dev.interfaces)))
    assert decide(policy, "p", reordered) == verdict
    assert d.parse(d.encode(dev)) == dev


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_value_error(data: bytes) -> None:
    try:
        dev = d.parse(data)
    except ValueError:
        return
    assert d.parse(d.encode(dev)).interfaces == dev.interfaces  # what parsed, re-encodes


@given(st.integers(0, len(HID_PLUS_ECM) - 1))
def test_a_truncated_device_is_refused(cut: int) -> None:
    with pytest.raises(ValueError):
        d.parse(HID_PLUS_ECM[:cut])


@pytest.mark.sfr("FMT_MSA.3")
@pytest.mark.spec("A-10", "A-3")
def test_the_default_rule_refuses_network_and_other() -> None:
    assert Category.NETWORK not in DEFAULT_RULE.allow and Category.OTHER not in DEFAULT_RULE.allow
