"""The facts the MFPSEC-MIB serves, read from the capabilities that hold them (the
composition root's view: only here do status, posture, keys, firmware and the audit
forwarders meet)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mfpsecd.audit.forwarder import Forwarder
from mfpsecd.audit.service import Auditor
from mfpsecd.base.posture import PostureId
from mfpsecd.firmware.service import FirmwareService
from mfpsecd.keys.chain import KeyChain
from mfpsecd.snmp.counters import EventCounters
from mfpsecd.snmp.model.facts import (
    ComponentRow,
    DaemonFacts,
    Facts,
    FirmwareFacts,
    KeyChainFacts,
    PostureRow,
)
from mfpsecd.snmp.ports import FactsSource
from mfpsecd.system.api import Status
from mfpsecd.system.posture import PostureBook
from mfpsecd.system.status import StatusService

# mfpsecPostureTable's row numbers: the posture's order, which only ever grows at the end
# (the MIB lists them; a test holds the two together).
POSTURE_NUMBER = {item: n for n, item in enumerate(PostureId, start=1)}


def snmp_facts(
    *,
    status: StatusService,
    posture: PostureBook,
    chain: KeyChain,
    firmware: FirmwareService | None,
    auditor: Auditor,
    forwarders: Callable[[], Sequence[Forwarder]],
    counters: EventCounters,
) -> FactsSource:
    async def read() -> Facts:
        s = status.get_status()
        keys = await chain.facts()
        return Facts(
            daemon=_daemon(s, keys.identity_fingerprint),
            posture=[
                PostureRow(
                    POSTURE_NUMBER[e.item.id],
                    e.item.id.value,
                    e.title,
                    e.item.state.value,
                    e.item.setting,
                    e.item.detail,
                    e.since,
                )
                for e in await posture.current()
            ],
            components=_components(s),
            counters=counters.snapshot(),
            forward_backlog=max(
                (auditor.last_seq - f.status.cursor for f in forwarders()), default=0
            ),
            firmware=await _firmware(firmware),
            keys=KeyChainFacts(
                keys.state.value,
                not keys.software_keys,
                keys.master_generation,
                keys.last_backup_at,
            ),
        )

    return read


def _daemon(s: Status, fingerprint: str) -> DaemonFacts:
    return DaemonFacts(
        s.version,
        s.state.value,
        s.uptime_seconds,
        s.started_at,
        s.boot_count,
        s.previous_shutdown,
        s.board,
        fingerprint,
    )


def _components(s: Status) -> list[ComponentRow]:
    return [ComponentRow(c.name, c.state.value, c.restarts, c.detail) for c in s.components]


async def _firmware(firmware: FirmwareService | None) -> FirmwareFacts:
    if firmware is None:
        return FirmwareFacts("", 0, -1, "not-applicable", False)
    fw = await firmware.status()
    boot = fw.booted
    return FirmwareFacts(
        boot.version if boot else "",
        boot.epoch if boot else 0,
        -1 if fw.counter is None else fw.counter,
        boot.result if boot else "",
        fw.locked,
    )


def status_facts(status: StatusService) -> FactsSource:
    """After a failed power-on self-test, only the status is known: the daemon's state
    (selfTestFailed) and its components; nothing else is read."""

    async def read() -> Facts:
        s = status.get_status()
        return Facts(daemon=_daemon(s, ""), posture=[], components=_components(s))

    return read
