"""The MFPSEC-MIB's counters (mfpsecCounters), counted from the audit records as they
become durable: the audit log is where every security event already is, so the counters
agree with it and no capability counts for SNMP. They start at zero with the daemon
(mfpsecDaemonUptime says since when), as SNMP counters do after an agent restart."""

from __future__ import annotations

from collections.abc import Sequence

from mfpsecd.alerts.rules import Rule, alert_of
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Record
from mfpsecd.snmp.model.facts import Counter


class EventCounters:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules  # the alert rules in force (replaced with the settings)
        self.values: dict[Counter, int] = dict.fromkeys(Counter, 0)

    def offer(self, records: list[Record]) -> None:
        """The auditor's listener: called with each durable batch; never blocks."""
        for r in records:
            for counter, n in _counted(r):
                self.values[counter] += n
            if alert_of(self.rules, r):
                self.values[Counter.ALERTS_RAISED] += 1

    def snapshot(self) -> dict[Counter, int]:
        return dict(self.values)


def _counted(r: Record) -> list[tuple[Counter, int]]:
    failed = r.outcome is Outcome.FAILURE
    phase = r.details.get("phase")
    out = [(Counter.AUDIT_RECORDS, 1)]
    match r.type:
        case EventType.AUTH_LOGIN:
            out.append((Counter.LOGINS_FAILED if failed else Counter.LOGINS_SUCCEEDED, 1))
        case EventType.AUTH_LOCKOUT:
            out.append((Counter.LOCKOUTS, 1))
        case EventType.AUTH_FLOOD:
            out.append((Counter.FLOOD_DETECTIONS, 1))
        case EventType.NETFILTER_REFUSED:
            packets = r.details.get("packets", 0)
            out.append((Counter.IP_FILTER_REFUSALS, packets if isinstance(packets, int) else 0))
        case EventType.SANITIZE if phase == "start" and not failed:
            out.append((Counter.SANITIZATIONS_STARTED, 1))
        case EventType.SANITIZE if phase == "result":
            out.append(
                (Counter.SANITIZATIONS_FAILED if failed else Counter.SANITIZATIONS_COMPLETED, 1)
            )
        case EventType.FIRMWARE_VERIFY:
            out.append((Counter.FIRMWARE_VERIFICATIONS, 1))
            if failed:
                out.append((Counter.FIRMWARE_VERIFY_FAILURES, 1))
        case EventType.USB_DEVICE if failed and r.subject.origin == DAEMON.origin:
            out.append((Counter.USB_REFUSALS, 1))
        case EventType.VIRUS_DETECTED:
            out.append((Counter.VIRUS_DETECTIONS, 1))
        case _:
            pass
    return out
