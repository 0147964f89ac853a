"""Who may call what: peer classes from socket credentials, and the privilege policy.

A connection's peer is classified once, from SO_PEERCRED/SO_PEERGROUPS, by the rules in
the configuration. The class alone grants what needs no user (status, logging in); a
logged-in session adds what its role allows (SPEC A-10). SYSTEM peers (root, the daemon's
own uid) could read the daemon's memory anyway: they hold every privilege but two. They do
not manage accounts without an administrator's session (else root could make itself an
administrator and lift what only an administrator lifts, such as the firmware rewrite
lock); they may list them, set the first administrator on a device that has none, and
recover an administrator with a code the operation panel shows (PRESENCE, the panel's
alone): someone must stand at the device, uid 0 is not enough.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from mfpsecd.base.access import Privilege, Role


class PeerClass(enum.Enum):
    SYSTEM = "system"  # uid 0, or the daemon's own uid: could ptrace the daemon anyway
    PANEL = "panel"  # the operation-panel UI process
    MAINTENANCE = "maintenance"  # members of the maintenance group: the `mfpsec` CLI
    REMOTE_AGENT = "remote-agent"  # the remote-panel agent (access.remote_agent_users, R-2)
    FLEET_AGENT = "fleet-agent"  # the fleet agent (access.fleet_agent_users, R-5)
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
    remote_agent_uids: frozenset[int] = frozenset()
    fleet_agent_uids: frozenset[int] = frozenset()


def classify(peer: PeerCredentials, rules: AdmissionRules) -> PeerClass:
    if peer.uid in (0, rules.daemon_uid):
        return PeerClass.SYSTEM
    if peer.uid in rules.panel_uids:
        return PeerClass.PANEL
    if peer.uid in rules.remote_agent_uids:
        return PeerClass.REMOTE_AGENT
    if peer.uid in rules.fleet_agent_uids:
        return PeerClass.FLEET_AGENT
    if rules.maintenance_gids.intersection((peer.gid, *peer.groups)):
        return PeerClass.MAINTENANCE
    return PeerClass.UNKNOWN


_P = Privilege
_GRANTS: dict[PeerClass, frozenset[Privilege]] = {
    PeerClass.SYSTEM: frozenset(Privilege) - {_P.USERS_ADMIN, _P.PRESENCE},
    PeerClass.PANEL: frozenset(
        {_P.INTROSPECT, _P.STATUS_READ, _P.AUTH, _P.PRESENCE, _P.REMOTE_PANEL}
    ),
    # The agents' own calls, nothing else: no login, no status beyond their part.
    PeerClass.REMOTE_AGENT: frozenset({_P.INTROSPECT, _P.REMOTE_AGENT}),
    PeerClass.FLEET_AGENT: frozenset({_P.INTROSPECT, _P.STATUS_READ, _P.FLEET_AGENT}),
    PeerClass.MAINTENANCE: frozenset({_P.INTROSPECT, _P.STATUS_READ, _P.KEYS_READ, _P.AUTH}),
    PeerClass.UNKNOWN: frozenset(),
}

_ROLE_GRANTS: dict[Role, frozenset[Privilege]] = {
    Role.ADMINISTRATOR: frozenset(
        {
            _P.INTROSPECT,
            _P.STATUS_READ,
            _P.AUTH,
            _P.KEYS_READ,
            _P.SECRETS_READ,
            _P.SECRETS_WRITE,
            _P.KEYS_ADMIN,
            _P.AUDIT_READ,
            _P.USERS_ADMIN,
            _P.USERS_READ,
            _P.SANITIZE,
            _P.STORE_USE,
            _P.STORE_ADMIN,
            _P.FIRMWARE_READ,
            _P.FIRMWARE_UPDATE,
            _P.FIRMWARE_LOCK,
            _P.NETWORK_READ,
            _P.NETWORK_ADMIN,
            _P.USB_READ,
            _P.USB_ADMIN,
            _P.MONITORING_READ,
            _P.MONITORING_ADMIN,
            _P.REMOTE_ADMIN,
            _P.REMOTE_PANEL,
        }
    ),
    # The service engineer: diagnostics, key backup/restore and disk sanitization at
    # decommissioning (SPEC: users and interfaces, W-2), firmware updates unless the
    # administrator prohibited them (F-3).
    Role.SERVICE: frozenset(
        {
            _P.INTROSPECT,
            _P.STATUS_READ,
            _P.AUTH,
            _P.KEYS_READ,
            _P.KEYS_ADMIN,
            _P.SANITIZE,
            _P.STORE_ADMIN,
            _P.FIRMWARE_READ,
            _P.FIRMWARE_UPDATE,
            _P.NETWORK_READ,
            _P.USB_READ,
        }
    ),
    Role.USER: frozenset({_P.INTROSPECT, _P.STATUS_READ, _P.AUTH, _P.STORE_USE}),
    Role.AUDITOR: frozenset(
        {_P.INTROSPECT, _P.STATUS_READ, _P.AUTH, _P.AUDIT_READ, _P.MONITORING_READ}
    ),
}


def session_privileges(
    peer_class: PeerClass, role: Role | None, must_change: bool
) -> frozenset[Privilege]:
    """What a connection may do with (or without) a logged-in role. A session whose
    password must be changed first adds nothing beyond logging in and out."""
    base = _GRANTS[peer_class]
    if role is None or must_change or peer_class is PeerClass.UNKNOWN:
        return base
    return base | _ROLE_GRANTS[role]


def role_table() -> Iterable[tuple[Role, frozenset[Privilege]]]:
    return _ROLE_GRANTS.items()


def privileges(peer_class: PeerClass) -> frozenset[Privilege]:
    return _GRANTS[peer_class]


def allowed(peer_class: PeerClass, needed: Privilege) -> bool:
    return needed in _GRANTS[peer_class]


def grants_table() -> Iterable[tuple[PeerClass, frozenset[Privilege]]]:
    return _GRANTS.items()
