"""Privileges a method can require. The peer/role → privilege policy lives in core.access."""

from __future__ import annotations

import enum


class Privilege(enum.Enum):
    """What a method needs. Values are stable names used in logs and documentation."""

    INTROSPECT = "introspect"  # org.varlink.service: GetInfo, GetInterfaceDescription
    STATUS_READ = "status.read"  # daemon and component health
    KEYS_READ = "keys.read"  # key-chain status, secret names and metadata, device identity
    SECRETS_WRITE = "secrets.write"  # set and delete secrets
    KEYS_ADMIN = "keys.admin"  # backup, restore, rotate, destroy
    AUDIT_READ = "audit.read"  # query, verify and export the audit log
