"""io.mfpsecd.Usb: what may be plugged into the controller's USB ports (SPEC U-1..U-4).

The panel and `mfpsec usb` list the connected devices with the decision for each, read
and set the policy, and allow or block one connected device once. Every decision and
every change is audited; a device the policy refuses raises the "USB device refused"
alert, at most once an hour for each device.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import Interface, Method, NoParams

PortName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")]
DeviceName = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,3}-[0-9.]{1,40}\Z")]
Hex4 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{4}\Z")]


class Use(enum.Enum):
    """A category of USB use: the classes of the interfaces a device offers."""

    MASS_STORAGE = "mass_storage"
    HID = "hid"
    CCID = "ccid"
    PRINTER = "printer"
    HUB = "hub"
    NETWORK = "network"
    OTHER = "other"


class Device(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A connected USB device and the decision for it."""

    device: str  # the kernel's name ("1-1.2"): what Allow and Block take
    port: str  # the board's port it is on ("": one the board profile does not name)
    vendor: str  # idVendor, hex ("0781"); "" when its descriptors do not parse
    product: str  # idProduct, hex
    serial: str  # as the device reports it (untrusted)
    manufacturer: str  # as the device reports it (untrusted)
    product_name: str  # as the device reports it (untrusted)
    uses: list[str]  # the categories its interfaces offer, across every configuration
    allowed: bool  # the kernel lets it bind drivers (when enforced)
    rule: str  # what decided: "port front", "approved[0]", "administrator", …
    reason: str  # why, for people
    by: str  # "policy", or "administrator" (a one-shot Allow or Block)
    decided_at: str  # RFC 3339 UTC
    enforced: bool  # the kernel holds the decision (false: see Devices.failure)


class Devices(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The connected devices and whether the kernel holds the policy."""

    devices: list[Device]  # every connected device but the buses' root hubs
    buses: list[str]  # the board's USB buses ("usb1", …)
    locked: bool  # every bus leaves new devices without drivers until the daemon decides
    failure: str  # why the kernel does not hold the policy ("" when it does)


class PortRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one port of the board may be used for."""

    port: PortName  # a port of the board profile (Policy.board_ports)
    allow: list[Use]  # anything else plugged in there is refused


class Approved(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A device allowed by its identity (a site's card readers), as lsusb shows it."""

    vendor: Hex4  # idVendor, 4 hex digits
    product: Hex4  # idProduct, 4 hex digits
    serial: Annotated[str, msgspec.Meta(max_length=126)] = ""  # "": any serial number
    port: Annotated[str, msgspec.Meta(max_length=64)] = ""  # "": on any port


class PolicyParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ports: Annotated[list[PortRule], msgspec.Meta(max_length=64)]  # one rule per port at most
    default: list[Use]  # what a port without a rule allows
    # Devices allowed by identity (still never a network interface where not allowed).
    approved: Annotated[list[Approved], msgspec.Meta(max_length=1024)] = []


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The USB port policy in force."""

    ports: list[PortRule]  # the ports with a rule of their own
    default: list[Use]  # what every other port allows
    approved: list[Approved]  # devices allowed by identity
    board_ports: list[str]  # the ports the board profile names
    set_by: str  # "configuration", or the administrator who set it over IPC
    set_at: str  # RFC 3339 UTC; "" for the configuration's


class DeviceParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    device: DeviceName  # the kernel's name, from ListDevices


LIST_DEVICES = Method(
    name="ListDevices",
    doc="The connected USB devices with the decision for each, and\nwhether the buses are locked.",
    params=NoParams,
    result=Devices,
    requires=Privilege.USB_READ,
)


GET_POLICY = Method(
    name="GetPolicy",
    doc="The USB port policy in force and where it comes from.",
    params=NoParams,
    result=Policy,
    requires=Privilege.USB_READ,
)


SET_POLICY = Method(
    name="SetPolicy",
    doc="Set the USB port policy: stored, audited, and applied to the\n"
    "connected devices at once (one the new policy refuses loses its\n"
    "drivers). A rule for a port the board does not have is refused.",
    params=PolicyParams,
    result=Policy,
    requires=Privilege.USB_ADMIN,
    errors=(ErrorCode.CONFIG_INVALID, ErrorCode.STATE_UNAVAILABLE),
)


ALLOW = Method(
    name="Allow",
    doc="Allow one connected device once (until it is unplugged or the\npolicy changes).",
    params=DeviceParams,
    result=Device,
    requires=Privilege.USB_ADMIN,
    errors=(ErrorCode.USB_DEVICE_NOT_FOUND,),
)


BLOCK = Method(
    name="Block",
    doc="Refuse one connected device once: its drivers are unbound now\n"
    "(until it is unplugged or the policy changes).",
    params=DeviceParams,
    result=Device,
    requires=Privilege.USB_ADMIN,
    errors=(ErrorCode.USB_DEVICE_NOT_FOUND,),
)


USB = Interface(
    module=__name__,
    name="io.mfpsecd.Usb",
    doc=(
        "What may be plugged into the controller's USB ports: each device is judged\n"
        "from its descriptors when it appears (every interface of every configuration\n"
        "must be allowed on its port) and the kernel's USB authorization enforces it."
    ),
    methods=(LIST_DEVICES, GET_POLICY, SET_POLICY, ALLOW, BLOCK),
)
