"""Who may call what: peer classes from socket credentials, and the privilege policy.

A connection's peer is classified once, from SO_PEERCRED/SO_PEERGROUPS, by the rules in
the configuration. Later, authenticated sessions (administrator, service engineer, user,
auditor) narrow this further; a peer class is the ceiling for anything on that connection.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from mfpsecd.api.access import Privilege


class PeerClass(enum.Enum):
    SYSTEM = "system"  # uid 0, or the daemon's own uid: could ptrace the daemon anyway
    PANEL = "panel"  # the operation-panel UI process
    MAINTENANCE = "maintenance"  # members of the maintenance group: the `mfpsec` CLI
    UNKNOWN = "unknown"  # not admitted: every call is answered PermissionDenied


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()  # supplementary groups (SO_PEERGROUPS)


@dataclass(frozen=True)
class AdmissionRules:
    daemon_uid: int
    panel_uids: frozenset[int]
    maintenance_gids: frozenset[int]


def classify(peer: PeerCredentials, rules: AdmissionRules) -> PeerClass:
    if peer.uid in (0, rules.daemon_uid):
        return PeerClass.SYSTEM
    if peer.uid in rules.panel_uids:
        return PeerClass.PANEL
    if rules.maintenance_gids.intersection((peer.gid, *peer.groups)):
        return PeerClass.MAINTENANCE
    return PeerClass.UNKNOWN


_GRANTS: dict[PeerClass, frozenset[Privilege]] = {
    PeerClass.SYSTEM: frozenset(Privilege),
    PeerClass.PANEL: frozenset({Privilege.INTROSPECT, Privilege.STATUS_READ}),
    # Until user authentication lands (issue 5), key administration and secret writes
    # are for SYSTEM peers (root, the daemon's own uid) only.
    PeerClass.MAINTENANCE: frozenset({Privilege.INTROSPECT, Privilege.STATUS_READ,
                                      Privilege.KEYS_READ}),
    PeerClass.UNKNOWN: frozenset(),
}


def privileges(peer_class: PeerClass) -> frozenset[Privilege]:
    return _GRANTS[peer_class]


def allowed(peer_class: PeerClass, needed: Privilege) -> bool:
    return needed in _GRANTS[peer_class]


def grants_table() -> Iterable[tuple[PeerClass, frozenset[Privilege]]]:
    return _GRANTS.items()
