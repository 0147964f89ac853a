"""Writes one firmware update, to be SIGKILLed at any moment of it.

    python -m tests.support.fw_update_crash ROOT ARCHIVE

Prints "ready" once the service is up, then "done <seconds>" when the update returned.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from cryptography import x509

from tests.support.fw_update_stack import ENGINEER, stack


async def main(root: Path, archive: Path) -> None:
    roots = tuple(x509.load_pem_x509_certificates((root / "root.pem").read_bytes()))
    async with stack(root, roots=roots) as s:
        print("ready", flush=True)
        t0 = time.monotonic()
        with archive.open("rb") as f:
            await s.fw.update(f, ENGINEER)
        print(f"done {time.monotonic() - t0:.3f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
