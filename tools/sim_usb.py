"""The simulated board's USB bus (`make run`): bus 1's root hub under the board's
sys_root, with a USB stick on the front port and a keyboard that is also a network
adapter on another port, as sysfs files. The daemon judges them at start: the stick is
allowed, the other refused (`mfpsec usb show`). Plug and unplug more with
`python -m tools.sim_usb plug|unplug …`; the daemon's rescan finds them within seconds."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.usb_devices import GADGET, STICK, FakeSysfs

SYS_ROOT = Path(".state/sim/sys")


def main(argv: list[str]) -> None:
    if argv[:1] == ["init"]:
        if (SYS_ROOT / "bus" / "usb").exists():
            return
        sysfs = FakeSysfs(SYS_ROOT)
        sysfs.plug(STICK, authorized="1")
        sysfs.plug(GADGET, authorized="1")
        print(f"sim-usb: bus usb1 under {SYS_ROOT} with a USB stick (1-1) and a gadget (1-4)")
    elif argv[:1] == ["plug"] and len(argv) in (2, 3):
        print(
            FakeSysfs(SYS_ROOT, create=False).plug(argv[1], name=argv[2] if len(argv) == 3 else "")
        )
    elif argv[:1] == ["unplug"] and len(argv) == 2:
        FakeSysfs(SYS_ROOT, create=False).unplug(argv[1])
    else:
        sys.exit("usage: python -m tools.sim_usb init | plug FIXTURE [NAME] | unplug NAME")


if __name__ == "__main__":
    main(sys.argv[1:])
