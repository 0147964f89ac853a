"""Which audit records are alerts (A-5, A-6, L-4, S-2): a rule names event types and
narrows them (failures only, a phase, an object pattern, the daemon's own records or a
caller's). The notifier rate-limits what the rules match into mails and traps; the
panel's event stream shows every match as it happens. Pure: no I/O, no clock."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Record


@dataclass(frozen=True)
class Rule:
    name: str
    events: frozenset[EventType]
    failures_only: bool = False
    threshold: int = 1
    window_s: float = 60.0
    min_interval_s: float = 300.0
    phase: str = ""  # only records whose details.phase is this ("" = any)
    except_phase: str = ""  # never records whose details.phase is this
    object: str = ""  # only records whose object matches this glob ("siem:*")
    by: str = ""  # "daemon": only the daemon's own records; "person": only a caller's
    per_object: bool = False  # rate limits per record object (one USB device), not per rule


def matches(rule: Rule, r: Record) -> bool:
    """Whether the record is one the rule is about (its rate limits aside)."""
    if r.type not in rule.events or (rule.failures_only and r.outcome is not Outcome.FAILURE):
        return False
    if rule.phase and r.details.get("phase") != rule.phase:
        return False
    if rule.except_phase and r.details.get("phase") == rule.except_phase:
        return False
    if rule.object and not fnmatch.fnmatchcase(r.object, rule.object):
        return False
    return not (rule.by and (r.subject.origin == DAEMON.origin) != (rule.by == "daemon"))


def alert_of(rules: Sequence[Rule], r: Record) -> str:
    """The first rule the record matches, by name ("" when it is no alert)."""
    for rule in rules:
        if matches(rule, r):
            return rule.name
    return ""


DEFAULT_RULES = [
    Rule("account locked", frozenset({EventType.AUTH_LOCKOUT})),
    Rule("request flood", frozenset({EventType.AUTH_FLOOD})),
    Rule("audit log full", frozenset({EventType.AUDIT_FULL})),
    Rule("clock changed", frozenset({EventType.TIME_CHANGE})),
    Rule("keys", frozenset({EventType.KEYS_DESTROY, EventType.KEYS_RESTORE})),
    Rule(
        "firmware",
        frozenset({EventType.FIRMWARE_VERIFY, EventType.FIRMWARE_UPDATE}),
        failures_only=True,
    ),
    # A sanitization or purge that ended without its result: a device that left data, or
    # one that stopped answering (DeviceStuck). Refused starts are not mailed.
    Rule(
        "sanitization failed", frozenset({EventType.SANITIZE}), failures_only=True, phase="result"
    ),
    # Root asked to recover an administrator, or did (services.admin_recovery): each one.
    Rule(
        "administrator recovery",
        frozenset({EventType.ROLE_CHANGE}),
        phase="recovery",
        min_interval_s=0,
    ),
    Rule("role changed", frozenset({EventType.ROLE_CHANGE}), except_phase="recovery"),
    # An administrator changed the IP filter; the daemon could not apply it, or found it
    # changed behind its back (ipfilter.service: drift).
    Rule("ip filter changed", frozenset({EventType.NETFILTER_CHANGE}), by="person"),
    Rule(
        "ip filter failed", frozenset({EventType.NETFILTER_CHANGE}), failures_only=True, by="daemon"
    ),
    # Evidence in doubt: the audit chain or its checkpoint failed verification, a torn
    # tail was cut off after a power cut, a stored job failed authentication.
    Rule(
        "audit log integrity", frozenset({EventType.AUDIT_INTEGRITY, EventType.AUDIT_TAIL_REPAIRED})
    ),
    Rule("stored data tampered", frozenset({EventType.STORE_INTEGRITY})),
    # The SIEM stopped taking records (a refused TLS handshake, no route): the first
    # failure of a kind is audited at once, repeats are counted (services.session_failures).
    Rule("SIEM unreachable", frozenset({EventType.SESSION_FAILURE}), object="siem:*"),
    # U-3: a USB device refused by the policy, at most once an hour for each device (its
    # vendor:product:serial); an administrator's own Block is no alert.
    Rule(
        "USB device refused",
        frozenset({EventType.USB_DEVICE}),
        failures_only=True,
        by="daemon",
        min_interval_s=3600.0,
        per_object=True,
    ),
    # V-3: every virus found; data that could not be scanned (stored or refused).
    Rule("virus detected", frozenset({EventType.VIRUS_DETECTED}), min_interval_s=0),
    Rule("virus scan failed", frozenset({EventType.SCAN_FAILED})),
    # remote sessions and the fleet agent's mode, so the panel sees them on its
    # stream as they happen (mails: at most one per rule per 5 minutes, the rest counted).
    # the panel must reset its screen (a remote session dropped on a protected
    # screen); before the general rule, so the panel can tell it from the others.
    Rule(
        "panel screen reset",
        frozenset({EventType.REMOTE_SESSION}),
        phase="screen-reset",
        min_interval_s=0,
    ),
    Rule("remote session", frozenset({EventType.REMOTE_SESSION})),
    Rule("fleet manage mode", frozenset({EventType.REMOTE_MODE})),
    # A protection of the S-1 posture was lost (turned off); its return is in the log.
    Rule("security posture", frozenset({EventType.POSTURE_CHANGE}), failures_only=True),
]
