"""io.mfpsecd.Monitoring: where the device reports its security to (SPEC L-3, L-4, S-3):
the SIEM destinations of the audit log, the alert channels (mail, SNMP traps) and rules,
and the SNMP subagent. An administrator reads and changes them as one document; the
change is checked as a whole (every destination, channel and rule built before anything
is swapped), stored, audited with what changed, and applied without a restart. Secrets
are named here, never carried: their values are set with io.mfpsecd.Keys.SetSecret
(write-only), and a document naming a secret that is not stored is refused.

The document has the shape of the configuration file's [[audit.forward]], [notify] and
[snmp] sections, with the same keys; until an administrator sets it, those sections of
the file apply.
"""

from __future__ import annotations

import enum

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import Interface, Method, NoParams


class Transport(enum.Enum):
    """How a SIEM destination is reached."""

    TLS = "tls"  # RFC 5425, the collector's certificate verified against ca_file
    TCP = "tcp"  # RFC 6587 octet counting, unprotected (a trusted segment only)
    UDP = "udp"  # RFC 5426, no delivery guarantee


class SiemFormat(enum.Enum):
    """The body of each syslog message: CEF or LEEF 2.0."""

    CEF = "cef"
    LEEF = "leef"


class SnmpVersion(enum.Enum):
    """v3 (authPriv), or v2c for old managers."""

    V3 = "v3"
    V2C = "v2c"


class AuthProtocol(enum.Enum):
    """SNMPv3 authentication: HMAC-SHA-2 (RFC 7860); SHA-1 is not offered."""

    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"


class PrivProtocol(enum.Enum):
    """SNMPv3 privacy: AES in CFB mode with a 128, 192 or 256-bit key."""

    AES128 = "aes128"
    AES192 = "aes192"
    AES256 = "aes256"


class SiemDestination(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One SIEM the audit log is forwarded to."""

    name: str  # unique; the forwarding cursor is kept by it across changes
    host: str  # the collector's name or address
    port: int = 6514  # 1-65535
    transport: Transport = Transport.TLS  # tls, tcp or udp
    format: SiemFormat = SiemFormat.CEF  # cef or leef
    ca_file: str | None = None  # tls: the CA of the collector's certificate (required)
    server_name: str | None = None  # tls: the name to check (default: host)
    client_cert_file: str | None = None  # tls: mutual TLS, with client_key_file
    client_key_file: str | None = None  # tls: its key (PEM; not readable by others)


class MailChannel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Alerts by mail, over STARTTLS with the server certificate verified."""

    host: str  # the mail server
    sender: str  # the From address
    recipients: list[str]  # at least one address
    port: int = 587  # 1-65535
    starttls: bool = True  # false only for a server on a trusted segment
    ca_file: str | None = None  # the CA of the server's certificate (null: the system's)
    username: str = ""  # SMTP AUTH (over STARTTLS only)
    password_secret: str = ""  # the secret-store name of the SMTP password


class SnmpTrapChannel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Alerts as traps straight to a manager (devices without snmpd)."""

    host: str  # the manager's name or address
    port: int = 162  # 1-65535
    version: SnmpVersion = SnmpVersion.V3  # v3 or v2c
    user: str = ""  # v3
    auth_protocol: AuthProtocol = AuthProtocol.SHA256  # v3: HMAC-SHA-2 (RFC 7860)
    priv_protocol: PrivProtocol = PrivProtocol.AES128  # v3
    engine_id: str | None = None  # v3: this device's engine ID (hex)
    auth_secret: str = ""  # v3: the secret-store names of the keys
    priv_secret: str = ""  # v3: the privacy key's
    community_secret: str = ""  # v2c: the secret-store name of the community


class AlertRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which audit records raise an alert, and how often at most."""

    name: str  # unique; what alerts and the event stream call it
    events: list[str]  # audit event types, e.g. auth.lockout
    failures_only: bool = False  # only records whose outcome is failure
    threshold: int = 1  # this many matching records ...
    window_s: float = 60.0  # ... within this long
    min_interval_s: float = 300.0  # at most one alert per this long; the rest summarised
    phase: str = ""  # only records whose details.phase is this
    except_phase: str = ""  # never records whose details.phase is this
    object: str = ""  # a glob on the record's object, e.g. siem:*
    by: str = ""  # "daemon": only the daemon's own records; "person": only a caller's


class Notify(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The alert channels and rules ([notify])."""

    mail: MailChannel | None = None  # null: no mail
    snmp: SnmpTrapChannel | None = None  # null: no direct traps (snmpd may send them)
    rules: list[AlertRule] | None = None  # null: the default rules (Settings.default_rules)
    expire_hours: float = 72.0  # an alert no channel took within this long is dropped


class Subagent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The MFPSEC-MIB served through the device's snmpd (AgentX)."""

    agentx_socket: str = ""  # snmpd's AgentX socket, or tcp:HOST:PORT; "": none
    enterprise: int = 32473  # the enterprise number the MIB sits under
    traps: bool = True  # alerts as notifications through snmpd's trap destinations
    timeout_s: int = 5  # how long snmpd waits for an answer, 1-60
    cache_s: float = 1.0  # how long a walk sees the same facts, 0-60


class Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The monitoring settings, as the configuration file's sections."""

    forward: list[SiemDestination] = []  # [[audit.forward]]
    notify: Notify = Notify()  # [notify]
    snmp: Subagent = Subagent()  # [snmp]


class SecretState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Whether a secret the document names is stored."""

    name: str  # a secret the document names
    stored: bool  # it is in the secret store (its value is never shown)


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    document: Document  # in force
    source: str  # "configuration" (the file), or "administrator" (set over IPC)
    set_by: str  # who set it ("" for the configuration's); untrusted text
    set_at: str  # RFC 3339 UTC ("" for the configuration's)
    default_rules: list[AlertRule]  # what notify.rules = null means
    secrets: list[SecretState]  # every secret the document names


class SetParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    document: Document  # the whole new document: what it leaves out is removed


GET_SETTINGS = Method(
    name="GetSettings",
    doc="The monitoring settings in force, where they come from, the\n"
    "default alert rules, and which named secrets are stored.",
    params=NoParams,
    result=Settings,
    requires=Privilege.MONITORING_READ,
)

SET_SETTINGS = Method(
    name="SetSettings",
    doc="Replace the monitoring settings: checked as a whole (nothing\n"
    "changes if any part is refused), stored, audited with what changed,\n"
    "applied without a restart (a SIEM destination kept by name keeps its\n"
    "cursor; alerts waiting in the outbox go to the new channels).",
    params=SetParams,
    result=Settings,
    requires=Privilege.MONITORING_ADMIN,
    errors=(ErrorCode.CONFIG_INVALID, ErrorCode.STATE_UNAVAILABLE),
)

RESET_SETTINGS = Method(
    name="ResetSettings",
    doc="Forget the settings an administrator set: the configuration\nfile's apply again, at once.",
    params=NoParams,
    result=Settings,
    requires=Privilege.MONITORING_ADMIN,
    errors=(ErrorCode.CONFIG_INVALID, ErrorCode.STATE_UNAVAILABLE),
)

MONITORING = Interface(
    module=__name__,
    name="io.mfpsecd.Monitoring",
    doc=(
        "Where the device reports its security to: SIEM destinations, alert channels\n"
        "and rules, the SNMP subagent. One document, changed as a whole, applied live."
    ),
    methods=(GET_SETTINGS, SET_SETTINGS, RESET_SETTINGS),
)
