"""The alert channels' settings, from the configuration (notify.mail, notify.snmp):
what the notifier and each channel's sender read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    ca_file: str | None = None
    timeout_s: float = 30.0
    username: str = ""  # SMTP AUTH (only over STARTTLS); the password is a stored secret
    password_secret: str = ""


@dataclass(frozen=True)
class SnmpSettings:
    host: str
    port: int = 162
    version: str = "v3"  # "v3" (authPriv: SHA + AES-128) or "v2c"
    user: str = ""  # v3
    engine_id: str = ""  # v3: hex; the receiver's createUser -e names it
    auth_secret: str = ""  # v3: secret-store names of the keys
    priv_secret: str = ""
    community_secret: str = ""  # v2c
