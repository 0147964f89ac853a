"""Contender (a): the PyPI `varlink` package's ThreadingServer serving
io.mfpsecd.System.GetStatus from the committed interface file.

    python -m bench.ipc.varlink_peer SOCKET STATUS_JSON

STATUS_JSON is the parameters of a real GetStatus reply of our daemon; every call returns
it with a fresh uptime, as ours does. Prints "ready" once listening.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import varlink

from bench import ROOT

# The System interface lives with its capability (mfpsecd/system/).
API_DIR = ROOT / "mfpsecd" / "system"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("socket", type=Path)
    parser.add_argument("status", type=Path)
    args = parser.parse_args()
    template: dict[str, Any] = json.loads(args.status.read_text())
    started = time.monotonic() - float(template["uptime_seconds"])

    service = varlink.Service(
        vendor="mfpsecd bench",
        product="varlink reference",
        version="0",
        url="https://varlink.org",
        interface_dir=str(API_DIR),
    )

    class System:
        def GetStatus(self) -> dict[str, Any]:
            return {**template, "uptime_seconds": round(time.monotonic() - started, 3)}

    # The package's documented pattern (loads API_DIR/io.mfpsecd.System.varlink).
    service.interface("io.mfpsecd.System")(System)
    # type() rather than a class statement: varlink is untyped and mypy refuses Any bases.
    handler = type("Handler", (varlink.RequestHandler,), {"service": service})
    server = varlink.ThreadingServer(f"unix:{args.socket}", handler)
    server.daemon_threads = True  # do not wait for client threads on exit
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
