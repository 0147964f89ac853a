"""A umockdev testbed with bus 1's root hub, and the recorded USB devices of
tests/data/usb plugged in and out on command.

Runs under umockdev-wrapper and the *system* python3 (Debian's python3-gi and
gir1.2-umockdev-1.0). Prints the testbed directory (UMOCKDEV_DIR for the process under
test), then reads commands on stdin, each answered `ok` once its uevent has been sent:
`plug FIXTURE AUTHORIZED` (the device as the kernel shows it: authorized 1 when it was
bound before the daemon locked the bus, 0 when plugged into a locked bus), `unplug NAME`,
`quit`.
"""

import sys
from pathlib import Path

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "usb"


def syspath(fixture):
    first = (DATA / f"{fixture}.umockdev").read_text().splitlines()[0]
    return "/sys" + first.removeprefix("P: ")


def main():
    bed = UMockdev.Testbed.new()
    if not bed.add_from_file(str(DATA / "bus.umockdev")):
        sys.exit("bus.umockdev did not load")
    print(bed.get_root_dir(), flush=True)
    plugged = {}
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "plug":
            fixture, authorized = args
            if not bed.add_from_file(str(DATA / f"{fixture}.umockdev")):
                sys.exit(f"{fixture} did not load")
            path = syspath(fixture)
            bed.set_attribute(path, "authorized", authorized)
            bed.uevent(path, "add")
            plugged[path.rsplit("/", 1)[1]] = path
        elif cmd == "unplug":
            path = plugged.pop(args[0])
            bed.uevent(path, "remove")
            bed.remove_device(path)
        elif cmd == "quit":
            break
        print("ok", flush=True)


if __name__ == "__main__":
    main()
