"""The USB devices of tests/data/usb (umockdev-record format, one device per file on the
root hub of bus.umockdev), and a sysfs tree of files that holds them the way the kernel
shows them, for tests of the USB service without umockdev's preload library."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "usb"
BUS = "devices/pci0000:00/0000:00:14.0/usb1"
# What each fixture is, and the port (kernel name) it is recorded on.
STICK, CCID, KEYBOARD, GADGET, HUB = (
    "usb-stick",
    "ccid-reader",
    "hid-keyboard",
    "hid-cdc-ecm",
    "hub",
)


@dataclass(frozen=True)
class Recorded:
    name: str  # kernel name: "1-1"
    path: str  # under the sysfs root
    attributes: dict[str, bytes]


def recorded(key: str) -> Recorded:
    """The first device of a fixture file: its path and attributes (A: text, H: hex)."""
    path, attrs = "", {}
    for line in (DATA / f"{key}.umockdev").read_text().splitlines():
        if not line:
            break
        tag, _, value = line.partition(": ")
        if tag == "P":
            path = value.lstrip("/")
        elif tag == "A":
            name, _, text = value.partition("=")
            attrs[name] = text.encode() + b"\n"
        elif tag == "H":
            name, _, hexed = value.partition("=")
            attrs[name] = bytes.fromhex(hexed)
    return Recorded(path.rsplit("/", 1)[1], path, attrs)


class FakeSysfs:
    """A sysfs root with bus 1's root hub; devices plugged and unplugged as files."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        """create=False: a tree made before (the simulated board's, say)."""
        self.root = root
        self.links = root / "bus" / "usb" / "devices"
        if not create:
            return
        self.links.mkdir(parents=True)
        hub = root / BUS
        hub.mkdir(parents=True)
        (hub / "authorized").write_text("1\n")
        (hub / "authorized_default").write_text("-1\n")
        (self.links / "usb1").symlink_to(os.path.relpath(hub, self.links))

    def plug(
        self,
        key: str,
        *,
        name: str = "",
        under: str = "",
        authorized: str = "0",
        descriptors: bytes | None = None,
    ) -> str:
        """under: the hub device (its path below the bus) the device is behind."""
        dev = recorded(key)
        name = name or dev.name
        node = self._node(name, under)
        node.mkdir(parents=True)
        for attr, value in dev.attributes.items():
            (node / attr).write_bytes(value)
        (node / "authorized").write_text(authorized + "\n")
        if descriptors is not None:
            (node / "descriptors").write_bytes(descriptors)
        (self.links / name).symlink_to(os.path.relpath(node, self.links))
        return name

    def _node(self, name: str, under: str = "") -> Path:
        if under:
            return self.root / BUS / under / name
        link = self.links / name
        return link.resolve() if link.is_symlink() else self.root / BUS / name

    def unplug(self, name: str) -> None:
        node = self._node(name)
        (self.links / name).unlink()
        for f in node.iterdir():
            f.unlink()
        node.rmdir()

    def authorized(self, name: str) -> str:
        return (self._node(name) / "authorized").read_text().strip()

    def authorized_default(self) -> str:
        return (self.root / BUS / "authorized_default").read_text().strip()

    def set_authorized(self, name: str, value: str) -> None:
        (self._node(name) / "authorized").write_text(value + "\n")
