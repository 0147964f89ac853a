"""Wire types shared by the daemon and its clients (msgspec Structs → Varlink types)."""

from __future__ import annotations

import enum

import msgspec


class HealthState(enum.Enum):
    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"  # working with reduced protection (e.g. software keys, no TPM)
    BACKOFF = "backoff"  # failed, restarting after a delay
    FAILED = "failed"  # gave up, or a required component is down
    STOPPED = "stopped"


class DaemonState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"  # serving, but at least one component is not ok
    FAILED = "failed"  # a power-on self-test failed: status only, security functions refused
    STOPPING = "stopping"


class ComponentHealth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Health of one daemon component or supervised task."""

    name: str
    state: HealthState
    detail: str
    restarts: int
    since: str  # RFC 3339 UTC time of the last state change


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
