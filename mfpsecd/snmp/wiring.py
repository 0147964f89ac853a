"""The subagent built from the configuration ([snmp]), for the composition root: its
counters listen to the audit records, its task is supervised, and the alert notifier
hands it the alerts when snmp.traps is on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mfpsecd.alerts.notifications import notification
from mfpsecd.alerts.outbox import Alert
from mfpsecd.alerts.wiring import alert_rules
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import Config
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.snmp.counters import EventCounters
from mfpsecd.snmp.ports import FactsSource
from mfpsecd.snmp.subagent import AgentxSettings, Subagent, port_number

TrapSender = Callable[[Alert], Awaitable[None]]


@dataclass(frozen=True)
class Fleet:
    subagent: Subagent
    traps: TrapSender | None  # None: alerts are not sent through the master agent


def make_subagent(
    cfg: Config,
    facts: FactsSource,
    *,
    clock: Clock,
    health: HealthRegistry,
    device: str,
    version: str,
) -> Fleet | None:
    """None when no AgentX master is configured."""
    snmp = cfg.snmp
    if not snmp.agentx_socket:
        return None
    if snmp.agentx_socket.startswith("tcp:"):
        try:
            port_number(snmp.agentx_socket.rpartition(":")[2])
        except ValueError as exc:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"snmp.agentx_socket: {exc}",
                key="snmp.agentx_socket",
                reason=str(exc),
            ) from None
    subagent = Subagent(
        AgentxSettings(
            snmp.agentx_socket,
            snmp.enterprise,
            snmp.timeout_s,
            snmp.cache_s,
            description=f"mfpsecd {version} security daemon (MFPSEC-MIB)",
        ),
        facts,
        clock,
        health,
    )

    async def send(alert: Alert) -> None:
        await subagent.notify(notification(snmp.enterprise, alert, device))

    return Fleet(subagent, send if snmp.traps else None)


def make_counters(cfg: Config) -> EventCounters:
    """The MIB's counters: made before the audit log opens, so that they count every
    record of this run (a daemon without a master agent counts too: it costs a few
    additions per record, and keeps the start-up in one shape)."""
    return EventCounters(alert_rules(cfg))
