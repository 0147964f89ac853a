"""io.mfpsecd.System: daemon identity, status and component health, and the S-1 security
posture."""

from __future__ import annotations

import enum

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.health import ComponentHealth
from mfpsecd.base.posture import PostureState
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


class PostureItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One protection of the S-1 posture, as the panel shows it."""

    id: str  # stable: "admin-password", "storage-encryption", ... (see README)
    title: str  # the name the panel shows, e.g. "Temporary data overwrite"
    state: PostureState  # on, off, not_applicable (on this board), not_managed (by mfpsecd)
    setting: str  # the setting behind the state, e.g. "box documents deleted after 30 days"
    detail: str  # why, or what to do, when the setting does not say it ("" otherwise)
    since: str  # RFC 3339 UTC: since when the item has had this state and setting


class Posture(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The security posture: every S-1 item, in the order the panel shows them."""

    items: list[PostureItem]
    at: str  # RFC 3339 UTC: when it was read


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


GET_POSTURE = Method(
    name="GetPosture",
    doc=(
        "The S-1 security posture: each protection with its state, the setting behind it\n"
        "and since when. An item whose part of the daemon could not be read is off, with\n"
        "why: never on unchecked."
    ),
    params=NoParams,
    result=Posture,
    requires=Privilege.STATUS_READ,
)


SYSTEM = Interface(
    name="io.mfpsecd.System",
    module=__name__,
    doc=(
        "The mfpsecd security daemon: its version, board, state, the health of its parts\n"
        "and the security posture."
    ),
    methods=(
        GET_STATUS,
        WATCH_STATUS,
        GET_POSTURE,
    ),
)
