"""The alert channels' settings, from the configuration (notify.mail, notify.snmp):
what the notifier and each channel's sender read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mfpsecd.alerts.outbox import Alert


class MailFailed(Exception):
    """An SMTP exchange that failed, named by the SMTP client's own exception: the
    notifier catches this, so it need not load the client before a mail is sent."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(why)
        self.name = name  # e.g. "SMTPConnectError"
        self.why = why  # in a few words, e.g. "SMTP 550"


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
    version: str = "v3"  # "v3" (authPriv) or "v2c"
    user: str = ""  # v3
    engine_id: str = ""  # v3: hex; the receiver's createUser -e names it
    auth_protocol: str = "sha256"  # v3: sha256, sha384, sha512 (RFC 7860)
    priv_protocol: str = "aes128"  # v3: aes128, aes192, aes256
    auth_secret: str = ""  # v3: secret-store names of the keys
    priv_secret: str = ""
    community_secret: str = ""  # v2c


@dataclass(frozen=True)
class AgentxChannel:
    """Alerts as MFPSEC-MIB notifications through the device's snmpd (AgentX), which
    sends them to its own trap destinations. Only the daemon holds the AgentX session:
    the boot-time commands keep such alerts in the outbox for it (send is None)."""

    master: str  # the master agent's socket, for messages
    send: Callable[[Alert], Awaitable[None]] | None = None
    # Whether there is a session now: without one an alert waits (not a failure), and
    # the subagent wakes the notifier when its session opens.
    ready: Callable[[], bool] = lambda: False
