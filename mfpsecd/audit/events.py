"""The closed catalogue of audit events (SPEC L-1; FAU_GEN.1): each type's stable name,
when it is recorded and the requirements it serves. Pure data."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventType(enum.Enum):
    """The closed catalogue. Values are stable: they go to the SIEM and into exports."""

    # FAU_GEN.1: start-up and shutdown of the audit function; the store itself
    AUDIT_START = "audit.start"
    AUDIT_STOP = "audit.stop"
    AUDIT_TAIL_REPAIRED = "audit.tail_repaired"  # a torn tail after a power cut, cut off
    AUDIT_FULL = "audit.full"  # L-5: capacity reached, the policy applied
    AUDIT_READ = "audit.read"  # who queried or exported the log
    AUDIT_CHECKPOINT = "audit.checkpoint"  # a signed (seq, hash) stored outside the log
    AUDIT_INTEGRITY = "audit.integrity"  # the chain or its checkpoint failed verification
    # FIA_UAU.1 / FIA_UID.1 / FIA_AFL.1 (issue 5 emits these)
    AUTH_LOGIN = "auth.login"
    AUTH_LOGOUT = "auth.logout"
    AUTH_LOCKOUT = "auth.lockout"
    AUTH_UNLOCK = "auth.unlock"
    AUTH_FLOOD = "auth.flood"
    SESSION_FAILURE = "session.failure"  # FTP_ITC.1 / FTP_TRP.1: a trusted channel failed
    # FMT_SMF.1 / FMT_SMR.1
    MANAGEMENT = "management"  # use of a management function, settings change
    ROLE_CHANGE = "role.change"
    # FPT_STM.1
    TIME_CHANGE = "time.change"
    # FDP_ACF.1: job completion (issue 7)
    JOB_COMPLETE = "job.complete"
    # E-3 / S-1: a job-store object deleted (by its owner, a policy, or a purge) and the
    # crypto-erase of the whole store
    STORE_DELETE = "store.delete"
    STORE_PURGE = "store.purge"
    STORE_INTEGRITY = "store.integrity"  # a stored object failed authentication
    # FPT_TUD_EXT.1 / FPT_TST_EXT.1 (issue 8)
    FIRMWARE_UPDATE = "firmware.update"
    FIRMWARE_VERIFY = "firmware.verify"
    SELF_TEST = "self_test"
    # FDP_RIP / sanitization (issues 6, 10)
    SANITIZE = "sanitize"
    # FCS_CKM: the key chain
    KEYS_PROVISION = "keys.provision"
    KEYS_UNLOCK = "keys.unlock"  # master key unwrapped at start, or the chain found locked
    KEYS_SOFTWARE_MODE = "keys.software_mode"
    KEYS_BACKUP = "keys.backup"
    KEYS_RESTORE = "keys.restore"
    KEYS_ROTATE = "keys.rotate"
    KEYS_DESTROY = "keys.destroy"
    SECRET_SET = "secret.set"  # noqa: S105 (an event name)
    SECRET_DELETE = "secret.delete"  # noqa: S105
    # FFW / IP filter (issue 9)
    NETFILTER_CHANGE = "netfilter.change"
    NETFILTER_REFUSED = "netfilter.refused"  # summary of refused connections
    # U-1..U-4: a USB device judged (allowed or refused, by which rule), and the policy
    USB_DEVICE = "usb.device"
    USB_POLICY = "usb.policy"
    # V-1..V-3: a virus found in job data, and data that could not be scanned
    VIRUS_DETECTED = "scan.virus"
    SCAN_FAILED = "scan.failed"
    # R-1..R-6: remote panel sessions (request, code, connect, disconnect, cancel) and the
    # fleet agent's mode (manage window opened, closed, an operation refused)
    REMOTE_SESSION = "remote.session"
    REMOTE_MODE = "remote.mode"
    # remote / maintenance sessions
    MAINTENANCE_SESSION = "maintenance.session"
    # S-1 / S-2: an item of the security posture changed state
    POSTURE_CHANGE = "posture.change"


@dataclass(frozen=True)
class EventDoc:
    """What an event type records, for people: README's catalogue is generated from these
    (tools/event_catalogue.py), so the documentation cannot drift from the code."""

    when: str
    sfr: str  # the HCD cPP requirements it serves


CATALOGUE: dict[EventType, EventDoc] = {
    EventType.AUDIT_START: EventDoc(
        "the audit function started; whether the chain was found intact", "FAU_GEN.1"
    ),
    EventType.AUDIT_STOP: EventDoc("the audit function stopped (a clean shutdown)", "FAU_GEN.1"),
    EventType.AUDIT_TAIL_REPAIRED: EventDoc(
        "a torn tail (a power cut during a write) was cut off at start", "FAU_STG.1"
    ),
    EventType.AUDIT_FULL: EventDoc(
        "capacity reached and the configured policy applied", "FAU_STG_EXT.1"
    ),
    EventType.AUDIT_READ: EventDoc("the log was queried or exported", "FAU_SAR.1"),
    EventType.AUDIT_CHECKPOINT: EventDoc(
        "a checkpoint (sequence, chain hash) signed by the device identity was stored", "FAU_STG.1"
    ),
    EventType.AUDIT_INTEGRITY: EventDoc(
        "the chain, or the checkpoint that vouches for it, failed verification (at start, "
        "or by a later verify); each distinct problem once",
        "FAU_STG.1",
    ),
    EventType.AUTH_LOGIN: EventDoc(
        "a login, successful or not (the object is the name typed)", "FIA_UAU.1, FIA_UID.1"
    ),
    EventType.AUTH_LOGOUT: EventDoc(
        "a session ended: by its user, or by the daemon (reason: timeout, evicted, ended by "
        "the administrator, accounts erased)",
        "FIA_UAU.1, FTA_SSL.3",
    ),
    EventType.AUTH_LOCKOUT: EventDoc("an account was locked after failed attempts", "FIA_AFL.1"),
    EventType.AUTH_UNLOCK: EventDoc("an account was unlocked by an administrator", "FIA_AFL.1"),
    EventType.AUTH_FLOOD: EventDoc(
        "a password-guessing or request flood was detected", "FIA_AFL.1"
    ),
    EventType.SESSION_FAILURE: EventDoc(
        "a trusted channel failed: SIEM connection or TLS handshake, mail or trap delivery,"
        " an alert expired undelivered, a refused IPC peer (counted per kind)",
        "FTP_ITC.1, FTP_TRP.1",
    ),
    EventType.MANAGEMENT: EventDoc(
        "a management function was used or a setting changed", "FMT_SMF.1, FMT_MTD.1"
    ),
    EventType.ROLE_CHANGE: EventDoc(
        "an account was created (the first administrator included) or removed; an "
        "administrator recovery was requested or completed",
        "FMT_SMR.1",
    ),
    EventType.TIME_CHANGE: EventDoc(
        "the wall clock stepped against the monotonic clock (beyond 2 s)", "FPT_STM.1"
    ),
    EventType.JOB_COMPLETE: EventDoc(
        "a stored job was output (read to print or send), printed, or deleted by request",
        "FDP_ACF.1",
    ),
    EventType.STORE_DELETE: EventDoc(
        "a job-store object was crypto-erased (request, retention, print, orphan)", "FDP_RIP.1"
    ),
    EventType.STORE_PURGE: EventDoc("the whole job store was crypto-erased", "FDP_RIP.1"),
    EventType.STORE_INTEGRITY: EventDoc("a stored object failed authentication", "FPT_TST_EXT.1"),
    EventType.FIRMWARE_UPDATE: EventDoc(
        "a firmware update was tried, staged or committed", "FPT_TUD_EXT.1"
    ),
    EventType.FIRMWARE_VERIFY: EventDoc(
        "firmware was verified (at boot, on demand)", "FPT_TUD_EXT.1"
    ),
    EventType.SELF_TEST: EventDoc(
        "the power-on self-tests ran: every test that passed, the first that failed",
        "FPT_TST_EXT.1",
    ),
    EventType.SANITIZE: EventDoc(
        "a sanitization or purge started, ended or was refused", "FDP_RIP.1"
    ),
    EventType.KEYS_PROVISION: EventDoc(
        "this start created the key chain (master, wrapping and identity keys)", "FCS_CKM.1"
    ),
    EventType.KEYS_UNLOCK: EventDoc(
        "the master key was unwrapped at start, or the chain found locked", "FCS_CKM.1"
    ),
    EventType.KEYS_SOFTWARE_MODE: EventDoc("the board has no TPM: keys in software", "FCS_CKM.1"),
    EventType.KEYS_BACKUP: EventDoc("the key chain was backed up", "FCS_CKM.1"),
    EventType.KEYS_RESTORE: EventDoc("the key chain was restored from a backup", "FCS_CKM.1"),
    EventType.KEYS_ROTATE: EventDoc("the master key was rotated", "FCS_CKM.1"),
    EventType.KEYS_DESTROY: EventDoc(
        "the key chain was destroyed (crypto-erase of every secret and account)", "FCS_CKM.4"
    ),
    EventType.SECRET_SET: EventDoc("a stored secret was set (never its value)", "FCS_CKM.1"),
    EventType.SECRET_DELETE: EventDoc("a stored secret was deleted", "FCS_CKM.4"),
    EventType.NETFILTER_CHANGE: EventDoc(
        "the IP filter changed (allow/deny lists, mode, bans), or was changed behind the "
        "daemon's back",
        "FFW_RUL_EXT.1",
    ),
    EventType.NETFILTER_REFUSED: EventDoc(
        "a summary of connections the filter refused", "FFW_RUL_EXT.1"
    ),
    EventType.USB_DEVICE: EventDoc(
        "a USB device was judged (connected, present at start, a policy change, an "
        "administrator's one-shot decision, a decision put back after drift) or removed: "
        "its identity, port, the rule that decided and why; a failure when refused",
        "FDP_ACF.1",
    ),
    EventType.USB_POLICY: EventDoc(
        "the USB port policy was set (each changed key with its old and new value), or a "
        "stored one no longer fit the board at start",
        "FMT_MSA.1",
    ),
    EventType.VIRUS_DETECTED: EventDoc(
        "a virus was found in job data on its way into the job store: the signature, the "
        "job, its owner and source, the option in force and what the job got (its data "
        "never stored; the job executed or deleted, with how many objects went)",
        "FDP_ACF.1",
    ),
    EventType.SCAN_FAILED: EventDoc(
        "job data could not be scanned (clamd down or too slow, its database too old, "
        "the data larger than it takes): why, and whether it was refused or stored "
        "marked not-scanned",
        "FPT_TST_EXT.1",
    ),
    EventType.REMOTE_SESSION: EventDoc(
        "a remote panel session: requested (or refused and why), an access code presented "
        "(right or wrong, lockouts), approved or denied at the panel, connected, ended "
        "with the reason (by either side, idle, maximum length, the panel busy) and "
        "whether the panel was told to reset its screen",
        "FTA_SSL.3",
    ),
    EventType.REMOTE_MODE: EventDoc(
        "the fleet agent's mode: a manage window opened (until when, by whom) or closed "
        "(expired, by an administrator), or an operation refused in monitor mode",
        "FMT_MOF.1",
    ),
    EventType.MAINTENANCE_SESSION: EventDoc(
        "a service engineer's session started or ended (logout, timeout, ended by the "
        "administrator)",
        "FAU_GEN.1",
    ),
    EventType.POSTURE_CHANGE: EventDoc(
        "an item of the security posture turned on or off (S-1): a failure when a "
        "protection was lost",
        "FMT_MOF.1",
    ),
}
