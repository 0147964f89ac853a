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
from mfpsecd.core.purge_plan import Level, plan  # noqa: E402


def main() -> None:
    command, devices = sys.argv[1], sys.argv[2:]
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
