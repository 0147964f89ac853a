"""Wire types shared by the daemon and its clients (msgspec Structs → Varlink types)."""

from __future__ import annotations

import enum

import msgspec

from mfpsecd.base.health import ComponentHealth


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
