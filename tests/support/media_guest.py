"""Runs inside the QEMU guest (see qemu_guest): the project's own probe and planner on
each device named, one JSON line per device, with the raw Identify data in hex.

    python tests/support/media_guest.py probe /dev/nvme0n1 /dev/sda ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The guest runs the checkout from a read-only share: no editable-install loader (it
# would try to rebuild the extension); the probe and planner are pure Python.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "MesonpyMetaFinder"]
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mfpsecd.backends.media_probe import probe  # noqa: E402
from mfpsecd.backends.media_purge import execute  # noqa: E402
from mfpsecd.core.purge_plan import Expect, Level, Method, plan  # noqa: E402


def purge(dev: str, method: str, expect: str) -> None:
    """purge DEVICE METHOD|plan EXPECT|plan: run a method (the planner's, or one named)."""
    p = plan(probe(Path(dev)).capabilities, Level.PURGE)
    m = p.method if method == "plan" else Method(method)
    e = p.expect if expect == "plan" else Expect(expect)
    out = execute(Path(dev), m, e, fraction=0.05)
    print(json.dumps({"device": dev, "method": m.value, "expect": e.value,
                      "device_said": out.device_said, "completed": out.completed,
                      "verify": out.verify, "seconds": round(out.seconds, 3)}), flush=True)


def main() -> None:
    command, devices = sys.argv[1], sys.argv[2:]
    if command == "purge":
        purge(*devices)
        return
    assert command == "probe"
    for dev in devices:
        p = probe(Path(dev))
        chosen = plan(p.capabilities, Level.PURGE)
        print(json.dumps({
            "device": dev, "transport": p.capabilities.transport,
            "rotational": p.capabilities.rotational, "problems": list(p.problems),
            "raw": {k: v.hex() for k, v in p.raw.items()},
            "method": chosen.method.value, "achieves": chosen.achieves.name.lower(),
            "expect": chosen.expect.value, "shortfall": chosen.shortfall,
            "skipped": [[m.value, why] for m, why in chosen.skipped],
        }), flush=True)


if __name__ == "__main__":
    main()
