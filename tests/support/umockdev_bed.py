"""A umockdev testbed with a USB stick that comes and goes on command.

Runs under umockdev-wrapper and the *system* python3 (Debian's python3-gi and
gir1.2-umockdev-1.0; PyGObject for this GLib is not in the venv). Prints the testbed
directory (UMOCKDEV_DIR for the process under test, which runs with libumockdev-preload),
then reads commands on stdin: `add`, `remove`, `quit`; each of the first two is answered
`ok` once its uevents have been sent.
"""

import sys

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

PORT = "/sys/devices/1-1"
ID_PATH = "pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0"


def add(bed):
    usb = bed.add_device(
        "usb",
        "1-1",
        None,
        [
            "idVendor",
            "0781",
            "idProduct",
            "5567",
            "manufacturer",
            "SanDisk",
            "product",
            "Cruzer Blade",
            "serial",
            "4C530001",
        ],
        ["DEVTYPE", "usb_device", "PRODUCT", "781/5567/100"],
    )
    iface = bed.add_device(
        "usb", "1-1:1.0", usb, ["bInterfaceClass", "08"], ["DEVTYPE", "usb_interface"]
    )
    common = [
        "ID_BUS",
        "usb",
        "ID_VENDOR",
        "SanDisk",
        "ID_MODEL",
        "Cruzer_Blade",
        "ID_SERIAL_SHORT",
        "4C530001",
        "ID_SERIAL",
        "SanDisk_Cruzer_Blade_4C530001",
    ]
    disk = bed.add_device(
        "block",
        "sdb",
        iface,
        ["size", "15633408", "dev", "8:16"],
        [
            "DEVTYPE",
            "disk",
            "DEVNAME",
            "/dev/sdb",
            "MAJOR",
            "8",
            "MINOR",
            "16",
            "ID_PATH",
            ID_PATH,
            "ID_PART_TABLE_TYPE",
            "dos",
            *common,
        ],
    )
    part = bed.add_device(
        "block",
        "sdb1",
        disk,
        ["size", "15631360", "dev", "8:17", "partition", "1"],
        [
            "DEVTYPE",
            "partition",
            "DEVNAME",
            "/dev/sdb1",
            "MAJOR",
            "8",
            "MINOR",
            "17",
            "PARTN",
            "1",
            "ID_PATH",
            ID_PATH + "-part1",
            "ID_FS_TYPE",
            "vfat",
            *common,
        ],
    )
    for dev in (usb, iface, disk, part):
        bed.uevent(dev, "add")
    return [part, disk, iface, usb]


def main():
    bed = UMockdev.Testbed.new()
    print(bed.get_root_dir(), flush=True)
    devices: list[str] = []
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "add" and not devices:
            devices = add(bed)
        elif cmd == "remove":
            for dev in devices:
                bed.uevent(dev, "remove")
                bed.remove_device(dev)
            devices = []
        elif cmd == "quit":
            break
        print("ok", flush=True)


if __name__ == "__main__":
    main()
