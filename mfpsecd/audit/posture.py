"""Audit forwarding's part of the S-1 posture (L-3): on when at least one SIEM destination
is configured; each destination's connection and backlog are said beside it."""

from __future__ import annotations

from mfpsecd.audit.forwarder import DestinationStatus
from mfpsecd.base.posture import PostureId, PostureItem, PostureState


def audit_forwarding(destinations: list[DestinationStatus]) -> PostureItem:
    if not destinations:
        return PostureItem(
            PostureId.AUDIT_FORWARDING,
            PostureState.OFF,
            "no SIEM destination",
            "the audit log is kept on the device only",
        )
    setting = "; ".join(
        f"{d.name}: {d.format} over {d.transport} to {d.address}" for d in destinations
    )
    notes = []
    for d in destinations:
        if not d.connected:
            why = f": {d.last_error}" if d.last_error else ""
            notes.append(f"{d.name} not connected{why} (backlog {d.backlog})")
        elif d.transport == "udp":
            notes.append(f"{d.name}: UDP is neither encrypted nor acknowledged")
    return PostureItem(PostureId.AUDIT_FORWARDING, PostureState.ON, setting, "; ".join(notes))
