"""Schemas of the daemon configuration and the board profile, and their validation.

Both are TOML files; unknown keys and out-of-range values are rejected with the key path
(`ipc.max_connections: expected int <= 4096`). Relative paths inside a file are resolved
against that file's directory by the loader, so a profile can be moved with its tree.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from mfpsecd.base.errors import ErrorCode, MfpsecError

_NAME = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")]
_PRINCIPAL = _NAME | Annotated[int, msgspec.Meta(ge=0, le=2**32 - 2)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


# ---------------------------------------------------------------- configuration


class LogLevel(enum.Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class DaemonSection(_Strict, frozen=True):
    board: _NAME | None = None  # board profile name (in board_dir) when --board is not given
    board_dir: str = "/usr/share/mfpsecd/hw"
    log_level: LogLevel = LogLevel.INFO


class IpcSection(_Strict, frozen=True):
    # Socket path; default <board run_dir>/mfpsecd.sock. Ignored under socket activation.
    socket_path: str | None = None
    # Group owning the socket (mode 0660); default: the daemon's primary group.
    socket_group: _PRINCIPAL | None = None
    max_message_bytes: Annotated[int, msgspec.Meta(ge=4096, le=16 << 20)] = 1 << 20
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64
    idle_timeout_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 300.0
    # Messages a client may pipeline before the daemon stops reading from it.
    queue_depth: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16
    # Of max_connections, kept for each admitted class of peer (the panel, root, the
    # maintenance group, the remote agents when configured), so that no class can take
    # every connection from the others.
    reserved_per_class: Annotated[int, msgspec.Meta(ge=0, le=64)] = 4
    # A connection that sends no whole message within this many seconds is closed.
    first_call_timeout_s: Annotated[float, msgspec.Meta(ge=1, le=300)] = 10.0


class AccessSection(_Strict, frozen=True):
    # Who may connect at all. uid 0 and the daemon's own uid are always admitted.
    panel_users: list[_PRINCIPAL] = []
    maintenance_groups: list[_PRINCIPAL] = []
    # The remote-panel agent's and the fleet agent's users: each may make its
    # own io.mfpsecd.Remote calls and nothing else.
    remote_agent_users: list[_PRINCIPAL] = []
    fleet_agent_users: list[_PRINCIPAL] = []


class StateSection(_Strict, frozen=True):
    # Period of the WAL checkpoint task.
    checkpoint_interval_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 300.0


class AuditFullPolicy(enum.Enum):
    # L-5: drop the oldest records only once they were exported (or forwarded)...
    OVERWRITE_EXPORTED = "overwrite-exported"
    # ... or refuse every operation that would need auditing until the log is exported.
    REFUSE = "refuse"


class ForwardTransport(enum.Enum):
    TLS = "tls"  # RFC 5425: syslog over TLS, octet counting
    TCP = "tcp"  # RFC 6587 octet counting, no protection (a trusted segment only)
    UDP = "udp"  # RFC 5426: one message per datagram, no delivery guarantee


class ForwardFormat(enum.Enum):
    CEF = "cef"
    LEEF = "leef"


class AuditForwardSection(_Strict, frozen=True):
    name: _NAME
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 6514
    transport: ForwardTransport = ForwardTransport.TLS
    format: ForwardFormat = ForwardFormat.CEF
    # TLS: the CA that signed the SIEM's certificate (required) and the name to check in it
    # (default: host). The certificate is always verified.
    ca_file: str | None = None
    server_name: str | None = None
    # TLS: a client certificate (PEM, with its chain) and its key (PEM, unencrypted, not
    # readable by others) for a collector that requires mutual TLS; both or neither.
    client_cert_file: str | None = None
    client_key_file: str | None = None


class AuditSection(_Strict, frozen=True):
    max_bytes: Annotated[int, msgspec.Meta(ge=1 << 20, le=1 << 36)] = 64 << 20
    full_policy: AuditFullPolicy = AuditFullPolicy.OVERWRITE_EXPORTED
    # Exported records older than this are dropped (whole segments); 0 keeps them until
    # the capacity needs the room.
    retention_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 0
    # SIEM destinations (L-3), each with its own persistent cursor.
    forward: list[AuditForwardSection] = []
    # A signed checkpoint at least this often when records were added (and every 256
    # records, and at stop).
    checkpoint_interval_s: Annotated[float, msgspec.Meta(ge=10, le=86400)] = 300.0


class NotifyMailSection(_Strict, frozen=True):
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    sender: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\Z")]
    recipients: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\Z")]],
        msgspec.Meta(min_length=1),
    ]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    starttls: bool = True  # the server certificate is verified (ca_file, or the system CAs)
    ca_file: str | None = None
    username: str = ""  # SMTP AUTH, over STARTTLS only
    password_secret: str = ""  # secret-store name of the password


# A rule's name is what mails, traps and the panel show: words with spaces, as the
# default rules' ("account locked").
_RULE_NAME = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9 _.-]{0,62}[A-Za-z0-9])?\Z")
]


class NotifyRuleSection(_Strict, frozen=True):
    name: _RULE_NAME
    events: Annotated[list[str], msgspec.Meta(min_length=1)]  # audit event types
    failures_only: bool = False
    threshold: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 1
    window_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 60.0
    min_interval_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 300.0
    phase: Annotated[str, msgspec.Meta(max_length=32)] = ""  # only this details.phase
    except_phase: Annotated[str, msgspec.Meta(max_length=32)] = ""  # never this phase
    object: Annotated[str, msgspec.Meta(max_length=128)] = ""  # glob on the record's object
    by: Literal["", "daemon", "person"] = ""  # the daemon's own records, or a caller's


class NotifySnmpSection(_Strict, frozen=True):
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 162
    version: Literal["v3", "v2c"] = "v3"
    # v3 (authPriv): the user, this device's engine ID (hex, as the receiver's
    # createUser -e), the secret-store names of the two keys and their algorithms
    # (RFC 7860 HMAC-SHA-2; SHA-1 is not offered).
    user: str = ""
    auth_protocol: Literal["sha256", "sha384", "sha512"] = "sha256"
    priv_protocol: Literal["aes128", "aes192", "aes256"] = "aes128"
    engine_id: Annotated[str, msgspec.Meta(pattern=r"^([0-9a-fA-F]{2}){5,32}\Z")] | None = None
    auth_secret: str = ""
    priv_secret: str = ""
    community_secret: str = ""  # v2c: secret-store name of the community


class NotifySection(_Strict, frozen=True):
    mail: NotifyMailSection | None = None
    snmp: NotifySnmpSection | None = None
    # Default rules when none are given: services.notify.DEFAULT_RULES (README lists them).
    rules: list[NotifyRuleSection] | None = None
    # An alert no channel took within this time is dropped, audited as session.failure.
    expire_hours: Annotated[float, msgspec.Meta(ge=1, le=720)] = 72.0


class SnmpSection(_Strict, frozen=True):
    # The net-snmp master agent's AgentX socket: a Unix socket path (snmpd's agentXSocket,
    # Debian: /var/agentx/master) or tcp:HOST:PORT; "" serves no MFPSEC-MIB.
    agentx_socket: Annotated[
        str, msgspec.Meta(pattern=r"^(|/[^\x00]{1,106}|tcp:[^\s/]+:[0-9]{1,5})\Z")
    ] = ""
    # The enterprise number the MFPSEC-MIB sits under: 32473 (RFC 5612, documentation)
    # until the integrator sets the vendor's own (and edits MFPSEC-MIB.txt to match).
    enterprise: Annotated[int, msgspec.Meta(ge=1, le=4294967295)] = 32473
    # Alerts as MFPSEC-MIB notifications through the master agent, which sends them to
    # the trap destinations of its own configuration (trapsess).
    traps: bool = True
    # How long the master agent waits for our answer (AgentX o.timeout), and how long a
    # walk may see the same facts before they are read again.
    timeout_s: Annotated[int, msgspec.Meta(ge=1, le=60)] = 5
    cache_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 1.0


class KeysSection(_Strict, frozen=True):
    # Shortest passphrase accepted for a key backup (printable ASCII).
    min_backup_passphrase: Annotated[int, msgspec.Meta(ge=12, le=64)] = 12


class FloodSection(_Strict, frozen=True):
    """Attack and flood detection (A-5, A-6): thresholds per source and in total."""

    failures: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 10
    failure_window_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 300.0
    requests: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 20
    request_window_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 60.0
    block_factor: Annotated[int, msgspec.Meta(ge=1, le=100)] = 4
    total_requests: Annotated[int, msgspec.Meta(ge=1, le=1000000)] = 300
    base_delay_s: Annotated[float, msgspec.Meta(ge=0.001, le=10)] = 0.25
    max_delay_s: Annotated[float, msgspec.Meta(ge=0.001, le=60)] = 5.0
    max_delayed: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 16  # then refused at once
    max_sources: Annotated[int, msgspec.Meta(ge=64, le=1 << 20)] = 16384
    spray_children: Annotated[int, msgspec.Meta(ge=2, le=65536)] = 16
    max_detections: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 20
    # Administrators' sources (CIDRs, addresses): never delayed because everyone together
    # floods, never banned at the IP filter (their own per-source limits still apply).
    exempt: list[str] = []


class CardSection(_Strict, frozen=True):
    """PKI card login (A-8). Off unless a PKCS#11 module is named."""

    module: str = ""  # e.g. /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
    token_label: str = ""  # only this token; empty: the first card present
    trust_anchors: list[str] = []  # PEM files of the CAs that issue the cards


class AuthSection(_Strict, frozen=True):
    """Argon2id cost of new password verifiers (existing ones keep theirs until changed)
    and the hashing pool; the defaults suit an ARM-class controller (README)."""

    argon2_memory_kib: Annotated[int, msgspec.Meta(ge=8192, le=1 << 20)] = 19 * 1024
    argon2_iterations: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2
    argon2_lanes: Annotated[int, msgspec.Meta(ge=1, le=8)] = 1
    hash_workers: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2
    hash_queue: Annotated[int, msgspec.Meta(ge=0, le=256)] = 8  # then Throttled at once
    flood: FloodSection = FloodSection()
    card: CardSection = CardSection()


class WipeSection(_Strict, frozen=True):
    # W-1: the overwrite mode for a finished job's data on HDD (1: one 0x00 pass,
    # 2: 0x00, 0xFF, 0x61, then read back).
    temporary_mode: Annotated[int, msgspec.Meta(ge=1, le=2)] = 2
    # A sanitization's durable checkpoint cadence: at most this much is written again
    # after a power cut (each checkpoint costs one flush of the disk's cache).
    checkpoint_mib: Annotated[int, msgspec.Meta(ge=16, le=65536)] = 1024
    # How often a running sanitization's progress is published to watchers and its last
    # flushed position recorded in the state store.
    progress_interval_ms: Annotated[int, msgspec.Meta(ge=20, le=5000)] = 250
    # A purge's read-back after a device command: this share of the blocks, spread over
    # the whole device (io.mfpsecd.Wipe.Purge verify_all=true reads every block).
    verify_percent: Annotated[float, msgspec.Meta(ge=0.01, le=100)] = 1.0
    # A device purge command (format, security erase, sanitize) with no result after
    # max(this, 3 x the device's own estimate) is reported stuck: the purge FAILS.
    purge_timeout_min: Annotated[int, msgspec.Meta(ge=1, le=2880)] = 60
    # A certificate names the person who sanitized: Start and Purge need a logged-in
    # session. The factory line, where nobody logs in, may set this: root without a
    # session then sanitizes as the operator "factory", audited and certified as such.
    factory_mode: bool = False
    # The purge helper's socket (the mfpsecd-purge.socket unit): device purge commands
    # and the privileged reads (NVMe logs, ATA IDENTIFY) run there, with CAP_SYS_ADMIN
    # and CAP_SYS_RAWIO, which the daemon as installed does not hold. Empty: in the
    # daemon's own process (the simulated board, a daemon run as root).
    purge_helper: Annotated[str, msgspec.Meta(pattern=r"^(/[^\0]*)?\Z")] = ""


class StoreSection(_Strict, frozen=True):
    # Worker threads sealing and opening one object, and the segment size (KiB, a power
    # of two from 4 to 16384).
    threads: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2
    segment_kib: Literal[4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384] = 64
    # S-1 deletion policies: box documents and encrypted PDFs after this many days (0:
    # kept until deleted), secure-print and ID & Print jobs not printed within this many
    # hours.
    box_retention_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 30
    secure_print_timeout_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 24
    encrypted_pdf_retention_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 1
    id_print_timeout_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 24
    sweep_interval_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 60.0


class TransfersSection(_Strict, frozen=True):
    """Descriptor-fed transfers (job-store Put and Read, firmware archives): a peer that
    stops feeding or reading is abandoned, so no caller holds the daemon's workers."""

    # No byte moved for this long: abandoned with TransferTimeout.
    idle_timeout_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 30.0
    # However slowly it moves, a transfer ends by then.
    deadline_s: Annotated[float, msgspec.Meta(ge=10, le=86400)] = 3600.0
    # The job store's own workers, and how many of them one owner's transfers may hold
    # (more are refused with Busy, so a stalled client cannot take the others').
    store_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8
    store_per_owner: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2


class NetworkSection(_Strict, frozen=True):
    # Refused-connection summaries in the audit log at most this often (N-2).
    refused_summary_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 60.0
    # A source that trips the flood detector is refused at the IP filter for
    # ban_s, four times longer at each trip within ban_max_s of the last, up to ban_max_s
    # (0: no bans).
    ban_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 600.0
    ban_max_s: Annotated[float, msgspec.Meta(ge=60, le=30 * 86400)] = 86400.0


class SecurityMode(enum.Enum):
    NORMAL = "normal"
    # F-2 / B-1: firmware is verified at every power-on and a mismatch stops the boot.
    ENHANCED = "enhanced"


class SecuritySection(_Strict, frozen=True):
    mode: SecurityMode = SecurityMode.NORMAL


class FirmwareSection(_Strict, frozen=True):
    # Boot attempts a newly written slot gets before the committed slot boots again.
    boot_tries: Annotated[int, msgspec.Meta(ge=1, le=16)] = 3


# The categories of USB use (SPEC U-1): mfpsecd/usb/model/policy.py's Category values (a
# test holds the two lists together).
UsbUse = Literal["mass_storage", "hid", "ccid", "printer", "hub", "network", "other"]
_HEX4 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{4}\Z")]


class UsbPortRuleSection(_Strict, frozen=True):
    # What a USB port may be used for (U-1); anything else plugged in there is refused.
    allow: list[UsbUse]
    id: _NAME = ""  # the board profile's port (usb_ports id); "" only for the default


class UsbApprovedSection(_Strict, frozen=True):
    # A device allowed by its identity (a site's card readers), as lsusb shows it (hex).
    vendor: _HEX4
    product: _HEX4
    serial: str = ""  # "": any serial number
    port: str = ""  # "": on any port


class UsbSection(_Strict, frozen=True):
    # One rule per port of the board profile ([[usb.ports]] with its id); a port without
    # one follows `default`.
    ports: list[UsbPortRuleSection] = []
    default: UsbPortRuleSection = UsbPortRuleSection(
        allow=["mass_storage", "hid", "ccid", "printer", "hub"]  # no network, no other
    )
    approved: list[UsbApprovedSection] = []


class ScanSection(_Strict, frozen=True):
    # The ClamAV daemon's Unix socket (Debian: /run/clamav/clamd.ctl); "" scans nothing.
    clamd_socket: str = ""
    # The longest clamd may take to take a chunk or to give its verdict.
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    # What an RX job (print, FAX or e-mail received) with a virus gets (V-2): continue
    # (executed without the infected data), delete (deleted, but FAX and e-mail executed),
    # delete-all. TX jobs (scan or FAX to send) with a virus are always deleted.
    rx_option: Literal["continue", "delete", "delete-all"] = "delete"
    # Data that cannot be scanned (clamd down or too slow, its database too old, larger
    # than its StreamMaxLength): refuse it (fail closed) or store it marked not-scanned.
    on_failure: Literal["refuse", "store-unscanned"] = "refuse"
    # A signature database older than this is a failure (0: not checked; local databases
    # without a date are not checked either).
    max_database_age_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 7


class RemoteSection(_Strict, frozen=True):
    # remote panel sessions, opened from the device side only, when this is on.
    enabled: bool = False
    code_length: Annotated[int, msgspec.Meta(ge=4, le=8)] = 4  # the access code's digits
    code_ttl_s: Annotated[float, msgspec.Meta(ge=10, le=3600)] = 300.0
    consent_ttl_s: Annotated[float, msgspec.Meta(ge=5, le=600)] = 60.0  # for the panel to decide
    idle_timeout_s: Annotated[float, msgspec.Meta(ge=10, le=86400)] = 600.0
    max_session_s: Annotated[float, msgspec.Meta(ge=60, le=86400)] = 3600.0


class Config(_Strict, frozen=True):
    daemon: DaemonSection = DaemonSection()
    ipc: IpcSection = IpcSection()
    access: AccessSection = AccessSection()
    state: StateSection = StateSection()
    keys: KeysSection = KeysSection()
    audit: AuditSection = AuditSection()
    notify: NotifySection = NotifySection()
    snmp: SnmpSection = SnmpSection()
    auth: AuthSection = AuthSection()
    wipe: WipeSection = WipeSection()
    store: StoreSection = StoreSection()
    security: SecuritySection = SecuritySection()
    scan: ScanSection = ScanSection()
    remote: RemoteSection = RemoteSection()
    firmware: FirmwareSection = FirmwareSection()
    network: NetworkSection = NetworkSection()
    transfers: TransfersSection = TransfersSection()
    usb: UsbSection = UsbSection()


# ---------------------------------------------------------------- board profile


class BoardKind(enum.Enum):
    DEVICE = "device"
    SIMULATED = "simulated"


class BoardSection(_Strict, frozen=True):
    name: _NAME
    kind: BoardKind
    description: str = ""
    # The controller as its certificates name it (W-4): the product model, and its serial
    # number, given here or read from a file under sys_root (e.g. class/dmi/id/
    # product_serial, or firmware/devicetree/base/serial-number).
    model: Annotated[str, msgspec.Meta(max_length=64)] = ""
    serial: Annotated[str, msgspec.Meta(max_length=64)] = ""
    serial_file: str = ""


class PathsSection(_Strict, frozen=True):
    state_dir: str  # durable state: SQLite database, wrapped keys
    run_dir: str  # runtime: the IPC socket
    dev_root: str = "/dev"  # where device nodes are looked up
    sys_root: str = "/sys"  # where sysfs is read
    proc_root: str = "/proc"  # where the mount table is read (self/mountinfo)
    # The running kernel's sysfs, where a simulated board's images attach to loop devices
    # (on a device: the same as sys_root).
    host_sys_root: str = "/sys"


class TpmBackend(enum.Enum):
    DEVICE = "device"  # a kernel TPM resource manager (/dev/tpmrm0)
    SWTPM = "swtpm"  # a software TPM the simulated board starts itself
    NONE = "none"  # explicit software-key mode; shown in status and audited


class TpmSection(_Strict, frozen=True):
    backend: TpmBackend
    device: str | None = None  # for backend=device, relative to dev_root
    # NV index of the anti-rollback counter (owner range 0x01000000-0x013FFFFF).
    nv_counter_index: Annotated[int, msgspec.Meta(ge=0x01000000, le=0x013FFFFF)] = 0x01000100
    # PCRs the platform firmware measures (7: Secure Boot state) that the wrapping key is
    # bound to as well as the firmware PCR of [firmware]: their values at provisioning.
    bind_pcrs: tuple[Annotated[int, msgspec.Meta(ge=0, le=7)], ...] = ()


class MediumKind(enum.Enum):
    HDD = "hdd"
    SSD = "ssd"
    NVME = "nvme"
    EMMC = "emmc"
    SD = "sd"


class DiskSection(_Strict, frozen=True):
    id: _NAME
    # device node relative to dev_root (device boards) or an image file (simulated boards)
    path: str
    medium: MediumKind
    sanitizable: bool = False  # never touched by sanitization unless true
    size_bytes: Annotated[int, msgspec.Meta(ge=0)] | None = None  # simulated images only
    # Simulated images only: what the image answers as its model and serial number
    # (default "simulated image" and SIM-<ID>). A device's come from the device.
    model: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    serial: Annotated[str, msgspec.Meta(max_length=64)] | None = None


# A namespace name; "{profile}" in it stands for a short hash of the board profile's
# directory, so two checkouts on one machine simulate their boards in namespaces of their
# own (the daemon and `make sim-net` derive the same name).
PROFILE_TAG = "{profile}"
_NETNS = Annotated[
    str,
    msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}(\{profile\})?[A-Za-z0-9_.-]{0,15}\Z"),
]


class NicSection(_Strict, frozen=True):
    name: _NAME
    kind: Literal["wired", "wireless"]
    netns: _NETNS | None = None  # simulated boards: the namespace the interface lives in


class NetServiceSection(_Strict, frozen=True):
    """A network service whose ports the administrator switches on and off (N-1)."""

    name: _NAME
    ports: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^(tcp|udp)/[0-9]{1,5}\Z")]],
        msgspec.Meta(min_length=1),
    ]


class UsbPortSection(_Strict, frozen=True):
    id: _NAME
    sysfs_path: str  # the port's device path under sys_root


class JobStoreSection(_Strict, frozen=True):
    """Where job data lives (E-1): a directory on the data disk, and what that disk is
    (W-1: overwritten on delete on an HDD, crypto-erase alone on flash)."""

    dir: str | None = None  # default: <state_dir>/store
    medium: MediumKind = MediumKind.HDD


class BoardFirmwareSection(_Strict, frozen=True):
    """The firmware this board runs (F-1..F-4): the model name manifests must list, the
    vendor roots signatures must chain to (PEM files; the simulated board has a
    development root in hw/), the A/B slot directories and the PCR the verified
    manifest digest is extended into."""

    model: _NAME
    roots: Annotated[list[str], msgspec.Meta(min_length=1)]
    # Certificate revocation lists (PEM or DER files) of the roots and intermediate CAs:
    # a signing key that leaked is retired without new roots.
    crls: list[str] = []
    slots_dir: str | None = None  # default: <state_dir>/firmware (slots a/ and b/)
    # A PCR this board's boot chain leaves to the operating system (a board booting
    # through shim, which uses 14 for MOK, names another).
    pcr: Annotated[int, msgspec.Meta(ge=8, le=15)] = 14
    max_bundle_mib: Annotated[int, msgspec.Meta(ge=1, le=65536)] = 2048


class BoardProfile(_Strict, frozen=True):
    board: BoardSection
    paths: PathsSection
    tpm: TpmSection
    store: JobStoreSection = JobStoreSection()
    disks: list[DiskSection] = []
    nics: list[NicSection] = []
    # The services the IP filter switches; empty: the usual MFP set (HTTP, HTTPS, IPP,
    # RAW 9100, LPD, SNMP, SMB, FTP, WSD, OpenAPI).
    net_services: list[NetServiceSection] = []
    usb_ports: list[UsbPortSection] = []
    firmware: BoardFirmwareSection | None = None  # no firmware service without it


# ---------------------------------------------------------------- validation

T = TypeVar("T", bound=msgspec.Struct)

_AT_RE = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.S)
_UNKNOWN_RE = re.compile(r"Object contains unknown field `([^`]+)`")
_MISSING_RE = re.compile(r"Object missing required field `([^`]+)`")


def _key_path(raw_path: str) -> str:
    path = raw_path.lstrip(".")
    return re.sub(r"\[(\d+)\]", r"[\1]", path)


def validation_message(exc: msgspec.ValidationError) -> tuple[str, str]:
    """(key path, reason) from a msgspec error: ('lockout.max_failures', 'expected int <= 10')."""
    m = _AT_RE.match(str(exc))
    assert m is not None
    reason, where = m.group(1), _key_path(m.group(2) or "")
    for regex, label in ((_UNKNOWN_RE, "unknown key"), (_MISSING_RE, "missing required key")):
        km = regex.match(reason)
        if km:
            key = f"{where}.{km.group(1)}" if where else km.group(1)
            return key, label
    reason = reason.replace("`", "")
    reason = reason[0].lower() + reason[1:] if reason else reason
    return where or "(top level)", reason


def parse(data: dict[str, Any], schema: type[T], origin: str) -> T:
    """Validate a parsed TOML document against a schema → MfpsecError(CONFIG_INVALID)."""
    try:
        return msgspec.convert(data, schema, strict=True)
    except msgspec.ValidationError as exc:
        key, reason = validation_message(exc)
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID, f"{origin}: {key}: {reason}", key=key, reason=reason
        ) from None
