"""A USB device as its own descriptors describe it (SPEC U-1, U-2): the device
descriptor and every configuration's interfaces, parsed from the bytes the kernel keeps
(sysfs `descriptors`: the device descriptor, then each configuration's full descriptor
set). Pure: the bytes come in, a UsbDevice or a ValueError that says what is wrong comes
out. The bytes are the device's own word, so nothing in them is trusted: lengths are
checked against what is there and against what each descriptor type must hold.

Every configuration counts, not only the active one: a device may offer a harmless first
configuration and a network adapter in its second, and switch when asked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DEVICE = 1
CONFIGURATION = 2
INTERFACE = 4
_DEVICE = struct.Struct("<BBHBBBBHHHBBBB")  # 18 bytes
_CONFIG = struct.Struct("<BBHBBBBB")  # 9 bytes
_INTERFACE = struct.Struct("<BBBBBBBBB")  # 9 bytes
MAX_CONFIGURATIONS = 8
MAX_INTERFACES = 64  # per device, all configurations and alternate settings together


@dataclass(frozen=True, order=True)
class Interface:
    configuration: int  # bConfigurationValue
    number: int  # bInterfaceNumber
    alternate: int  # bAlternateSetting
    cls: int  # bInterfaceClass
    subclass: int
    protocol: int


@dataclass(frozen=True)
class UsbDevice:
    vendor: int  # idVendor
    product: int  # idProduct
    cls: int  # bDeviceClass (0: each interface says)
    subclass: int
    protocol: int
    usb_version: int  # bcdUSB
    device_version: int  # bcdDevice
    interfaces: tuple[Interface, ...]

    @property
    def identity(self) -> str:
        return f"{self.vendor:04x}:{self.product:04x}"


def _configuration(data: bytes, start: int) -> tuple[list[Interface], int]:
    """One configuration's interfaces and where the next configuration begins."""
    if len(data) - start < _CONFIG.size:
        raise ValueError(f"configuration at byte {start}: {len(data) - start} bytes, not 9")
    length, kind, total, _n, value, _i, _attrs, _power = _CONFIG.unpack_from(data, start)
    if kind != CONFIGURATION or length < _CONFIG.size:
        raise ValueError(f"configuration at byte {start}: type {kind}, length {length}")
    if total < length or start + total > len(data):
        raise ValueError(
            f"configuration at byte {start}: wTotalLength {total} runs past the "
            f"{len(data) - start} bytes there"
        )
    found = []
    pos, end = start + length, start + total
    while pos < end:
        if end - pos < 2:
            raise ValueError(f"descriptor at byte {pos}: truncated")
        size, kind = data[pos], data[pos + 1]
        if size < 2 or pos + size > end:
            raise ValueError(f"descriptor at byte {pos}: length {size} does not fit")
        if kind == INTERFACE:
            if size < _INTERFACE.size:
                raise ValueError(f"interface at byte {pos}: length {size}, not 9")
            _l, _t, number, alternate, _eps, cls, subclass, protocol, _s = _INTERFACE.unpack_from(
                data, pos
            )
            found.append(Interface(value, number, alternate, cls, subclass, protocol))
        pos += size
    return found, end


def parse(data: bytes) -> UsbDevice:
    """The device from its raw descriptors. ValueError names the first thing wrong."""
    if len(data) < _DEVICE.size:
        raise ValueError(f"device descriptor: {len(data)} bytes, not 18")
    (length, kind, usb, cls, subclass, protocol, _mps, vendor, product, version, _m, _p, _s,
     configurations) = _DEVICE.unpack_from(data, 0)  # fmt: skip
    if kind != DEVICE or length != _DEVICE.size:
        raise ValueError(f"device descriptor: type {kind}, length {length}")
    if not 1 <= configurations <= MAX_CONFIGURATIONS:
        raise ValueError(f"device descriptor: {configurations} configurations")
    interfaces: list[Interface] = []
    pos = length
    for _ in range(configurations):
        found, pos = _configuration(data, pos)
        interfaces += found
        if len(interfaces) > MAX_INTERFACES:
            raise ValueError(f"more than {MAX_INTERFACES} interfaces")
    return UsbDevice(
        vendor, product, cls, subclass, protocol, usb, version, tuple(sorted(set(interfaces)))
    )


def encode(device: UsbDevice) -> bytes:
    """The descriptors that describe device (one configuration per configuration value,
    no endpoints): what a test or a recorded device's fixture starts from."""
    values = sorted({i.configuration for i in device.interfaces}) or [1]
    out = bytearray(
        _DEVICE.pack(
            18,
            DEVICE,
            device.usb_version,
            device.cls,
            device.subclass,
            device.protocol,
            64,
            device.vendor,
            device.product,
            device.device_version,
            0,
            0,
            0,
            len(values),
        )
    )
    for value in values:
        body = b"".join(
            _INTERFACE.pack(
                9, INTERFACE, i.number, i.alternate, 0, i.cls, i.subclass, i.protocol, 0
            )
            for i in device.interfaces
            if i.configuration == value
        )
        numbers = {i.number for i in device.interfaces if i.configuration == value}
        out += _CONFIG.pack(9, CONFIGURATION, 9 + len(body), len(numbers), value, 0, 0x80, 50)
        out += body
    return bytes(out)
