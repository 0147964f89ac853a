"""All interfaces the daemon serves, and lookup of a fully qualified method name."""

from __future__ import annotations

from typing import Any

from mfpsecd.audit.api import AUDIT
from mfpsecd.auth.api import AUTH
from mfpsecd.firmware.api import FIRMWARE
from mfpsecd.ipfilter.api import NETWORK
from mfpsecd.keys.api import KEYS
from mfpsecd.monitoring.api import MONITORING
from mfpsecd.remote.api import REMOTE
from mfpsecd.store.api import STORE
from mfpsecd.system.api import SYSTEM
from mfpsecd.usb.api import USB
from mfpsecd.varlink.schema import Interface, Method
from mfpsecd.varlink.service import SERVICE
from mfpsecd.wipe.api import WIPE

INTERFACES: tuple[Interface, ...] = (
    SERVICE,
    SYSTEM,
    AUTH,
    KEYS,
    AUDIT,
    WIPE,
    STORE,
    FIRMWARE,
    NETWORK,
    USB,
    REMOTE,
    MONITORING,
)
BY_NAME: dict[str, Interface] = {i.name: i for i in INTERFACES}

VENDOR = "mfpsecd project"
PRODUCT = "mfpsecd"
URL = "https://mfpsecd.invalid/"


def split_method(qualified: str) -> tuple[str, str]:
    """'io.mfpsecd.System.GetStatus' → ('io.mfpsecd.System', 'GetStatus')."""
    interface, _, method = qualified.rpartition(".")
    return interface, method


def lookup(qualified: str) -> tuple[Interface | None, Method[Any, Any] | None]:
    interface_name, method_name = split_method(qualified)
    interface = BY_NAME.get(interface_name)
    if interface is None:
        return None, None
    return interface, interface.method(method_name)


def all_methods() -> list[tuple[str, Method[Any, Any]]]:
    return [(f"{i.name}.{m.name}", m) for i in INTERFACES for m in i.methods]
