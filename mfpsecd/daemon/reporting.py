"""Everything that reports the device's security to the outside, built from one
configuration and swapped as a whole: the SIEM forwarders, the alert notifier and its
rules, the SNMP subagent. The daemon builds it at start from the configuration (with the
monitoring settings an administrator stored) and again on io.mfpsecd.Monitoring.
SetSettings: prepare() builds every part, so a configuration that cannot be built
changes nothing; the commit it returns stops the old parts and starts the new ones."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence

from mfpsecd import __version__
from mfpsecd.alerts.notifier import Notifier, SecretSource
from mfpsecd.alerts.rules import Rule, alert_of
from mfpsecd.alerts.wiring import alert_rules, make_notifier
from mfpsecd.audit.forwarder import Forwarder, make_forwarders
from mfpsecd.audit.log_format import Record
from mfpsecd.audit.model.siem import Device
from mfpsecd.audit.service import Auditor
from mfpsecd.audit.session_failures import SessionFailures
from mfpsecd.base import optional
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import Config
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.state import StateStore
from mfpsecd.base.supervisor import Supervisor
from mfpsecd.keys.secrets import SecretStore
from mfpsecd.monitoring.ports import Commit
from mfpsecd.snmp.counters import EventCounters
from mfpsecd.snmp.model.facts import Facts
from mfpsecd.snmp.ports import FactsSource
from mfpsecd.snmp.subagent import COMPONENT as SUBAGENT
from mfpsecd.snmp.wiring import Fleet, make_subagent

NOTIFY = "notify"


class Reporting:
    def __init__(
        self,
        *,
        auditor: Auditor,
        state: StateStore,
        clock: Clock,
        health: HealthRegistry,
        failures: SessionFailures,
        secrets: SecretSource,
        device: Callable[[], Device],
        board_name: str,
        counters: EventCounters,
    ) -> None:
        self._auditor, self._state, self._clock = auditor, state, clock
        self._health, self._failures, self._secrets = health, failures, secrets
        self._device, self._board_name, self._counters = device, board_name, counters
        self._supervisor: Supervisor | None = None
        self.facts: FactsSource | None = None  # set once the posture exists
        self.forwarders: Sequence[Forwarder] = ()
        self.rules: Sequence[Rule] = ()
        self._notifier: Notifier | None = None
        self._fleet: Fleet | None = None
        auditor.add_listener(self._offer)

    def attach(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    @property
    def running(self) -> bool:
        return self._supervisor is not None

    def alert_of(self, record: Record) -> str:
        """The rule in force a record matches, by name (the panel's event stream)."""
        return alert_of(self.rules, record)

    def _offer(self, records: list[Record]) -> None:
        if self._notifier is not None:
            self._notifier.offer(records)

    async def _facts(self) -> Facts:
        assert self.facts is not None
        return await self.facts()

    async def prepare(self, cfg: Config) -> Commit:
        optional.check_config(cfg)
        rules = alert_rules(cfg)
        forwarders = make_forwarders(
            cfg.audit.forward,
            self._auditor,
            self._state,
            self._clock,
            self._health,
            hostname=socket.gethostname(),
            version=__version__,
            device=self._device,
            failures=self._failures,
        )
        fleet = make_subagent(
            cfg,
            self._facts,
            clock=self._clock,
            health=self._health,
            device=self._board_name,
            version=__version__,
        )
        notifier = make_notifier(
            cfg,
            self._clock,
            self._health,
            self._board_name,
            self._state,
            secrets=self._secrets,
            failures=self._failures,
            agentx=fleet.traps if fleet is not None else None,
            agentx_ready=(lambda: fleet.subagent.connected) if fleet is not None else lambda: False,
        )
        if fleet is not None and notifier is not None:
            fleet.subagent.on_session = notifier.poke

        async def commit() -> None:
            await self._stop_parts()
            self.rules, self.forwarders = rules, forwarders
            self._notifier, self._fleet = notifier, fleet
            self._counters.rules = rules
            self._start_parts()

        return commit

    async def _stop_parts(self) -> None:
        sup = self._supervisor
        assert sup is not None
        for f in self.forwarders:
            await sup.remove(f"siem-{f.dest.name}")
            self._health.forget(f"forward:{f.dest.name}")
        if self._fleet is not None:
            await sup.remove(SUBAGENT)
        if self._notifier is not None:
            await sup.remove(NOTIFY)
        self._notifier = None

    def _start_parts(self) -> None:
        sup = self._supervisor
        assert sup is not None
        for f in self.forwarders:
            sup.add(f"siem-{f.dest.name}", f.run)
        if self._fleet is not None:
            sup.add(SUBAGENT, self._fleet.subagent.run)
        if self._notifier is not None:
            sup.add(NOTIFY, self._notifier.run)


def stored_secrets(secrets: SecretStore) -> Callable[[], Awaitable[frozenset[str]]]:
    """The names the secret store holds (from its list: nothing is unsealed to answer)."""

    async def names() -> frozenset[str]:
        return frozenset(info.name for info in await secrets.list())

    return names
