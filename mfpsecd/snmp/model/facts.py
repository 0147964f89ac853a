"""What the MFPSEC-MIB serves, as the daemon knows it at one moment: the daemon, the
posture, the components, the counters, the firmware and the key chain. The daemon's
composition root fills it (daemon/snmp_facts.py); model/mib_objects.py turns it into the
MIB's objects. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Counter(enum.IntEnum):
    """mfpsecCounters: each member's value is its sub-identifier in the MIB."""

    LOGINS_SUCCEEDED = 1
    LOGINS_FAILED = 2
    LOCKOUTS = 3
    FLOOD_DETECTIONS = 4
    IP_FILTER_REFUSALS = 5
    AUDIT_RECORDS = 6
    # 7 is mfpsecAuditForwardBacklog, a gauge (Facts.forward_backlog)
    SANITIZATIONS_STARTED = 8
    SANITIZATIONS_COMPLETED = 9
    SANITIZATIONS_FAILED = 10
    FIRMWARE_VERIFICATIONS = 11
    FIRMWARE_VERIFY_FAILURES = 12
    USB_REFUSALS = 13
    VIRUS_DETECTIONS = 14
    ALERTS_RAISED = 15


FORWARD_BACKLOG = 7


@dataclass(frozen=True)
class DaemonFacts:
    version: str
    state: str  # system.api.DaemonState value
    uptime_s: float
    started_at: str  # RFC 3339
    boot_count: int
    previous_shutdown: str  # none, clean, unclean
    board: str
    identity_fingerprint: str


@dataclass(frozen=True)
class PostureRow:
    number: int  # the row's fixed number (the MIB lists them)
    name: str
    title: str
    state: str  # base.posture.PostureState value
    setting: str
    detail: str
    since: str


@dataclass(frozen=True)
class ComponentRow:
    name: str
    state: str  # base.health.HealthState value
    restarts: int
    detail: str


@dataclass(frozen=True)
class FirmwareFacts:
    version: str
    epoch: int
    floor: int  # the anti-rollback floor; -1 when it cannot be read
    boot: str  # verified, failed, "" (not run), "not-applicable" (no firmware slots)
    rewrite_prohibited: bool


@dataclass(frozen=True)
class KeyChainFacts:
    state: str  # keys.chain.ChainState value
    tpm_bound: bool
    generation: int
    last_backup: str  # RFC 3339, "" never


@dataclass(frozen=True)
class Facts:
    daemon: DaemonFacts
    posture: list[PostureRow]
    components: list[ComponentRow]
    counters: dict[Counter, int] = field(default_factory=dict)
    forward_backlog: int = 0
    firmware: FirmwareFacts = FirmwareFacts("", 0, -1, "not-applicable", False)
    keys: KeyChainFacts = KeyChainFacts("starting", False, 0, "")
