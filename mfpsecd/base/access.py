"""Privileges a method can require, and the roles users hold (SPEC A-10). The peer/role →
privilege policy lives in core.access."""

from __future__ import annotations

import enum


class Privilege(enum.Enum):
    """What a method needs. Values are stable names used in logs and documentation."""

    INTROSPECT = "introspect"  # org.varlink.service: GetInfo, GetInterfaceDescription
    STATUS_READ = "status.read"  # daemon and component health
    AUTH = "auth"  # log in and out, one's own session and password, the password rules
    KEYS_READ = "keys.read"  # key-chain status, device identity
    # The stored secrets' names and metadata: they name every account (auth.user.NAME),
    # so only an administrator lists them.
    SECRETS_READ = "secrets.read"
    SECRETS_WRITE = "secrets.write"  # set and delete secrets
    KEYS_ADMIN = "keys.admin"  # backup, restore, rotate, destroy
    AUDIT_READ = "audit.read"  # query, verify and export the audit log
    USERS_ADMIN = "users.admin"  # user accounts, unlock, the authentication policy
    USERS_READ = "users.read"  # list the accounts
    # Recover an administrator when none can log in: asked for by root, completed with a
    # code only the operation panel shows (PRESENCE), so uid 0 alone is not enough.
    USERS_RECOVER = "users.recover"
    PRESENCE = "presence"  # what needs a person at the device: the panel's recovery code
    SANITIZE = "sanitize"  # list disks, start and cancel sanitizations, their certificates
    STORE_USE = "store.use"  # one's own job-store objects (an administrator: everyone's)
    STORE_ADMIN = "store.admin"  # the job store's status; purge (crypto-erase everything)
    FIRMWARE_READ = "firmware.read"  # firmware status; verify a slot or a bundle
    FIRMWARE_UPDATE = "firmware.update"  # write a bundle to the inactive slot
    FIRMWARE_LOCK = "firmware.lock"  # prohibit firmware rewriting, and allow it again
    NETWORK_READ = "network.read"  # the IP filter's rules and what they admit
    NETWORK_ADMIN = "network.admin"  # change ranges, the quick filter, service ports
    USB_READ = "usb.read"  # the USB port policy and the connected devices' decisions
    USB_ADMIN = "usb.admin"  # set the USB policy; allow or block a connected device once
    MONITORING_READ = "monitoring.read"  # SIEM destinations, alert channels and rules, SNMP
    MONITORING_ADMIN = "monitoring.admin"  # change them (applied without a restart)
    # R-1..R-6: the panel's part of remote sessions (their codes, approve or deny), the
    # remote-panel agent's, the fleet agent's, and the administrator's (manage window,
    # ending sessions).
    REMOTE_PANEL = "remote.panel"
    REMOTE_AGENT = "remote.agent"
    FLEET_AGENT = "remote.fleet"
    REMOTE_ADMIN = "remote.admin"


class Role(enum.Enum):
    """The roles of SPEC A-10. Values are stable: stored and shown on the wire."""

    ADMINISTRATOR = "administrator"
    SERVICE = "service"  # the service engineer (CE)
    USER = "user"
    AUDITOR = "auditor"  # reads the audit log, nothing else
