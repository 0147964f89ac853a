"""io.mfpsecd.System: daemon identity, status and component health."""

from __future__ import annotations

import enum

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.health import ComponentHealth
from mfpsecd.varlink.schema import Interface, Method, NoParams


class DaemonState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"  # serving, but at least one component is not ok
    FAILED = "failed"  # a power-on self-test failed: status only, security functions refused
    STOPPING = "stopping"


class Status(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the daemon is and how it is doing."""

    version: str
    board: str
    board_kind: str
    state: DaemonState
    started_at: str
    uptime_seconds: float
    boot_count: int
    previous_shutdown: str  # "clean", "unclean" (power cut or crash), or "none" at first boot
    components: list[ComponentHealth]
    # Security notices the panel shows at start-up until resolved (stable ids), e.g.
    # "administrator-unset": first start, no administrator password yet.
    notices: list[str] = []


GET_STATUS = Method(
    name="GetStatus",
    doc="Version, board, uptime and the health of every component.",
    params=NoParams,
    result=Status,
    requires=Privilege.STATUS_READ,
)


WATCH_STATUS = Method(
    name="WatchStatus",
    doc=(
        "Stream the status: the current one first, then a new reply each time the\n"
        "daemon state or a component's health changes. Call with more=true."
    ),
    params=NoParams,
    result=Status,
    requires=Privilege.STATUS_READ,
    streams=True,
)


SYSTEM = Interface(
    name="io.mfpsecd.System",
    module=__name__,
    doc="The mfpsecd security daemon: its version, board, state and the health of its parts.",
    methods=(
        GET_STATUS,
        WATCH_STATUS,
    ),
)
