"""The virus scan from the configuration ([scan]): None when no engine is configured."""

from __future__ import annotations

from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import Config
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.supervisor import Supervisor
from mfpsecd.scan.backends.clamd import Clamd
from mfpsecd.scan.model.outcome import FailurePolicy, RxOption
from mfpsecd.scan.service import ScanSettings, VirusScan


def make_scan(
    cfg: Config, *, clock: Clock, health: HealthRegistry, auditor: Auditor
) -> VirusScan | None:
    s = cfg.scan
    if not s.clamd_socket:
        return None
    return VirusScan(
        Clamd(s.clamd_socket, s.timeout_s),
        ScanSettings(
            engine=f"clamd at {s.clamd_socket}",
            rx_option=RxOption(s.rx_option),
            on_failure=FailurePolicy(s.on_failure),
            max_database_age_s=s.max_database_age_days * 86400.0,
        ),
        clock=clock,
        health=health,
        auditor=auditor,
    )


async def start_scan(
    cfg: Config, *, clock: Clock, health: HealthRegistry, auditor: Auditor
) -> VirusScan | None:
    """The scan, its engine asked once: status says at start whether clamd answers."""
    scan = make_scan(cfg, clock=clock, health=health, auditor=auditor)
    if scan is not None:
        await scan.check()
    return scan


def supervise_scan(supervisor: Supervisor, scan: VirusScan | None) -> None:
    """The engine's state kept current (status, posture, what a job gets meanwhile)."""
    if scan is not None:
        supervisor.add("virus-scan-check", scan.run)
