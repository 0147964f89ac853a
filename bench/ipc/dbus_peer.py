"""Contender (b): io.mfpsecd.System.GetStatus as a D-Bus method, served with dbus_fast
(asyncio) through a bus daemon.

    python -m bench.ipc.dbus_peer BUS_ADDRESS STATUS_JSON

The reply is the same status as a typed D-Bus struct (SIGNATURE), the natural D-Bus
encoding of the Varlink type, rather than a JSON string inside D-Bus. Prints "ready" once
the bus name is owned.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import BusType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import RequestNameReply
from dbus_fast.service import ServiceInterface, dbus_method

BUS_NAME = "io.mfpsecd.Bench"
OBJECT_PATH = "/io/mfpsecd/System"
INTERFACE = "io.mfpsecd.System"
# version board board_kind state started_at uptime boot_count previous_shutdown components
SIGNATURE = "(sssssdxsa(sssxs))"

Component = tuple[str, str, str, int, str]
StatusStruct = Annotated[
    tuple[str, str, str, str, str, float, int, str, list[Component]], DBusSignature(SIGNATURE)
]


class System(ServiceInterface):
    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(INTERFACE)
        self._s = status
        self._started = time.monotonic() - float(status["uptime_seconds"])
        self._components: list[Component] = [
            (c["name"], c["state"], c["detail"], c["restarts"], c["since"])
            for c in status["components"]
        ]

    @dbus_method()
    def GetStatus(self) -> StatusStruct:
        s = self._s
        return (
            s["version"],
            s["board"],
            s["board_kind"],
            s["state"],
            s["started_at"],
            round(time.monotonic() - self._started, 3),
            s["boot_count"],
            s["previous_shutdown"],
            self._components,
        )


async def serve(address: str, status: dict[str, Any]) -> None:
    bus = await MessageBus(bus_address=address, bus_type=BusType.SESSION).connect()
    bus.export(OBJECT_PATH, System(status))
    reply = await bus.request_name(BUS_NAME)
    if reply is not RequestNameReply.PRIMARY_OWNER:
        raise SystemExit(f"could not own {BUS_NAME}: {reply}")
    print("ready", flush=True)
    await bus.wait_for_disconnect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("status", type=Path)
    args = parser.parse_args()
    asyncio.run(serve(args.address, json.loads(args.status.read_text())))


if __name__ == "__main__":
    main()
