"""Every failure a client can see: one closed enum with stable wire names and exit statuses.

A member's wire name is its Varlink error name and is never renamed; add a member instead.
Protocol-level failures use the standard org.varlink.service errors so any Varlink client
understands them; our own live in the io.mfpsecd.* interfaces that declare them.
Exit statuses follow sysexits.h so scripts driving `mfpsec` can branch on them.
"""

from __future__ import annotations

import enum
from typing import Any

# sysexits.h
EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_PROTOCOL = 76
EX_NOPERM = 77
EX_CONFIG = 78


class ErrorCode(enum.Enum):
    """(wire name, exit status, parameter names with their types, one-line meaning)."""

    INTERFACE_NOT_FOUND = (
        "org.varlink.service.InterfaceNotFound",
        EX_PROTOCOL,
        (("interface", str),),
        "The requested interface is not served here.",
    )
    METHOD_NOT_FOUND = (
        "org.varlink.service.MethodNotFound",
        EX_PROTOCOL,
        (("method", str),),
        "The interface has no such method.",
    )
    METHOD_NOT_IMPLEMENTED = (
        "org.varlink.service.MethodNotImplemented",
        EX_PROTOCOL,
        (("method", str),),
        "The method is declared but this daemon does not implement it.",
    )
    INVALID_PARAMETER = (
        "org.varlink.service.InvalidParameter",
        EX_DATAERR,
        (("parameter", str),),
        "A parameter is missing, unknown, of the wrong type or out of range.",
    )
    PERMISSION_DENIED = (
        "org.varlink.service.PermissionDenied",
        EX_NOPERM,
        (),
        "The caller is not admitted, or lacks the privilege the method requires.",
    )
    EXPECTED_MORE = (
        "org.varlink.service.ExpectedMore",
        EX_PROTOCOL,
        (),
        "The method streams its replies and must be called with more=true.",
    )
    INTERNAL = (
        "io.mfpsecd.System.Internal",
        EX_SOFTWARE,
        (),
        "An unexpected daemon failure; details are in the daemon's log, never on the wire.",
    )
    PROTOCOL_ERROR = (
        "io.mfpsecd.System.ProtocolError",
        EX_PROTOCOL,
        (("reason", str),),
        "The message is not a Varlink call (not JSON, not an object, no method); "
        "the connection is closed after this reply.",
    )
    MESSAGE_TOO_LARGE = (
        "io.mfpsecd.System.MessageTooLarge",
        EX_DATAERR,
        (("max_bytes", int),),
        "The message exceeds the daemon's size limit; the connection is closed after this reply.",
    )
    BUSY = (
        "io.mfpsecd.System.Busy",
        EX_TEMPFAIL,
        (("reason", str),),
        "The daemon cannot take this request now (shutting down, or a resource limit).",
    )
    TRANSFER_TIMEOUT = (
        "io.mfpsecd.System.TransferTimeout",
        EX_TEMPFAIL,
        (("reason", str),),
        "A transfer through a passed descriptor was abandoned: no byte moved for the "
        "inactivity timeout, or it ran past its deadline ([transfers] in the configuration). "
        "Nothing was stored or changed.",
    )
    CONFIG_INVALID = (
        "io.mfpsecd.System.ConfigInvalid",
        EX_CONFIG,
        (("key", str), ("reason", str)),
        "A configuration or board-profile value is missing, unknown or out of range.",
    )
    STATE_UNAVAILABLE = (
        "io.mfpsecd.System.StateUnavailable",
        EX_IOERR,
        (("reason", str),),
        "The durable state store cannot be opened, migrated or written.",
    )
    PART_UNAVAILABLE = (
        "io.mfpsecd.System.PartUnavailable",
        EX_UNAVAILABLE,
        (("part", str), ("reason", str)),
        "The call needs an optional part this installation lacks: the build leaves it out "
        "(a meson option: snmp, card_login, pdf) or its Python package is not installed.",
    )
    SELF_TEST_FAILED = (
        "io.mfpsecd.System.SelfTestFailed",
        EX_SOFTWARE,
        (("test", str),),
        "A start-up self-test failed; the daemon does not serve security functions.",
    )
    SYSTEM_REPORT_INVALID = (
        "io.mfpsecd.System.ReportInvalid",
        EX_DATAERR,
        (("reason", str),),
        "The posture report is malformed, altered, or not signed by this device.",
    )
    SYSTEM_REPORT_FOREIGN = (
        "io.mfpsecd.System.ReportForeign",
        EX_DATAERR,
        (("fingerprint", str),),
        "The report's signature is intact, but no identity key this device has had made it "
        "(fingerprint: the key the document carries): this device did not issue it.",
    )
    KEYS_UNAVAILABLE = (
        "io.mfpsecd.Keys.KeysUnavailable",
        EX_UNAVAILABLE,
        (("reason", str),),
        "The key chain is locked: this TPM cannot unwrap the stored keys (a replaced or "
        "cleared TPM, or firmware other than the verified firmware the keys are bound to "
        "was measured at this boot). Secrets stay sealed until the bound firmware boots or "
        "the key backup is restored.",
    )
    KEY_INTEGRITY = (
        "io.mfpsecd.Keys.IntegrityFailure",
        EX_DATAERR,
        (("object", str),),
        "A wrapped key or sealed secret was modified or does not belong to this device; "
        "it was refused and nothing was decrypted.",
    )
    TPM_FAILED = (
        "io.mfpsecd.Keys.TpmFailure",
        EX_IOERR,
        (("command", str), ("code", str)),
        "The TPM did not complete a command (unreachable, or it returned an error).",
    )
    SECRET_NOT_FOUND = (
        "io.mfpsecd.Keys.SecretNotFound",
        EX_DATAERR,
        (("name", str),),
        "No secret of that name is stored.",
    )
    BACKUP_INVALID = (
        "io.mfpsecd.Keys.BackupInvalid",
        EX_DATAERR,
        (("reason", str),),
        "The file is not a usable key backup (not one, unsupported version, truncated or "
        "corrupted); nothing was changed.",
    )
    WRONG_PASSPHRASE = (
        "io.mfpsecd.Keys.WrongPassphrase",
        EX_NOPERM,
        (),
        "The backup passphrase does not open this backup; nothing was changed.",
    )
    BACKUP_OTHER_DEVICE = (
        "io.mfpsecd.Keys.BackupFromOtherDevice",
        EX_DATAERR,
        (("fingerprint", str),),
        "The backup holds another device's key, not the one this device's secrets are "
        "wrapped with; nothing was changed.",
    )
    RESTORE_NOT_NEEDED = (
        "io.mfpsecd.Keys.RestoreNotNeeded",
        EX_DATAERR,
        (),
        "The TPM already unwraps this device's keys; a restore would change nothing.",
    )
    BACKUP_TARGET_UNUSABLE = (
        "io.mfpsecd.Keys.BackupTargetUnusable",
        EX_IOERR,
        (("target", str), ("reason", str)),
        "The backup cannot be written there or read from there (not a directory, missing, "
        "read-only or full).",
    )
    PASSPHRASE_TOO_WEAK = (
        "io.mfpsecd.Keys.PassphraseTooWeak",
        EX_DATAERR,
        (("min_length", int),),
        "The backup passphrase is shorter than the minimum or not printable ASCII.",
    )
    AUTHENTICATION_FAILED = (
        "io.mfpsecd.Auth.AuthenticationFailed",
        EX_NOPERM,
        (),
        "Wrong user name, password, PIN or one-time code (which one is not said).",
    )
    ACCOUNT_LOCKED = (
        "io.mfpsecd.Auth.AccountLocked",
        EX_NOPERM,
        (("retry_after_s", int),),
        "Too many failed logins: the account is locked for a while (an administrator can "
        "unlock it). Nothing about the password just given is revealed.",
    )
    AUTHENTICATION_REQUIRED = (
        "io.mfpsecd.Auth.AuthenticationRequired",
        EX_NOPERM,
        (("reason", str),),
        "The method needs a logged-in user with a role that allows it (no session, the "
        "session ended or timed out, or the password must be changed first).",
    )
    SECOND_FACTOR_REQUIRED = (
        "io.mfpsecd.Auth.SecondFactorRequired",
        EX_NOPERM,
        (),
        "The account has a TOTP second factor: call again with the current one-time code.",
    )
    PASSWORD_REJECTED = (
        "io.mfpsecd.Auth.PasswordRejected",
        EX_DATAERR,
        (("rules", str), ("requirements", str)),
        "The new password breaks the password policy; rules names each rule that failed "
        "(comma-separated) and requirements says what they ask for.",
    )
    USER_NOT_FOUND = (
        "io.mfpsecd.Auth.UserNotFound",
        EX_DATAERR,
        (("user", str),),
        "No user account of that name.",
    )
    USER_EXISTS = (
        "io.mfpsecd.Auth.UserExists",
        EX_DATAERR,
        (("user", str),),
        "A user account of that name already exists.",
    )
    LAST_ADMINISTRATOR = (
        "io.mfpsecd.Auth.LastAdministrator",
        EX_DATAERR,
        (("user", str),),
        "The change would leave the device without an administrator.",
    )
    ALREADY_INITIALIZED = (
        "io.mfpsecd.Auth.AlreadyInitialized",
        EX_DATAERR,
        (),
        "An administrator account exists already; first-start setup is over.",
    )
    RECOVERY_NOT_PENDING = (
        "io.mfpsecd.Auth.RecoveryNotPending",
        EX_NOPERM,
        (("reason", str),),
        "No administrator recovery with that id waits for this caller: it expired, a newer "
        "request replaced it, or wrong codes ended it. Request a new one.",
    )
    THROTTLED = (
        "io.mfpsecd.Auth.Throttled",
        EX_TEMPFAIL,
        (("retry_after_s", float),),
        "Too many authentication requests from this source (or in total): try again later.",
    )
    CERTIFICATE_REJECTED = (
        "io.mfpsecd.Auth.CertificateRejected",
        EX_NOPERM,
        (("reason", str),),
        "The card's certificate is not acceptable (untrusted issuer, expired, wrong key "
        "usage) or is bound to no user.",
    )
    CARD_UNUSABLE = (
        "io.mfpsecd.Auth.CardUnusable",
        EX_UNAVAILABLE,
        (("reason", str),),
        "No card is present, or the card could not prove possession of its key.",
    )
    AUDIT_FULL = (
        "io.mfpsecd.Audit.AuditFull",
        EX_UNAVAILABLE,
        (("policy", str),),
        "The audit log is full and its policy refuses operations that would need auditing "
        "until it is exported (or, by policy, until old exported records may be dropped).",
    )
    WIPE_TARGET_UNKNOWN = (
        "io.mfpsecd.Wipe.TargetUnknown",
        EX_DATAERR,
        (("target", str),),
        "The board profile lists no disk with this id.",
    )
    WIPE_TARGET_REFUSED = (
        "io.mfpsecd.Wipe.TargetRefused",
        EX_UNAVAILABLE,
        (("target", str), ("reason", str)),
        "The target may not be overwritten: not listed as sanitizable in the board profile, "
        "mounted, in use, or not the device the profile names.",
    )
    WIPE_IO_ERROR = (
        "io.mfpsecd.Wipe.IoError",
        EX_IOERR,
        (("target", str), ("offset", int), ("reason", str)),
        "Writing or reading the target failed at this byte offset (errno in reason).",
    )
    WIPE_VERIFY_FAILED = (
        "io.mfpsecd.Wipe.VerifyFailed",
        EX_IOERR,
        (("target", str), ("offset", int)),
        "The read-back does not hold what the last pass wrote, first difference at offset: "
        "the data is NOT sanitized.",
    )
    WIPE_CANCELLED = (
        "io.mfpsecd.Wipe.Cancelled",
        EX_TEMPFAIL,
        (("job", str),),
        "The sanitization was cancelled before it finished; the target is not sanitized.",
    )
    WIPE_ALREADY_RUNNING = (
        "io.mfpsecd.Wipe.AlreadyRunning",
        EX_TEMPFAIL,
        (("target", str), ("job", str)),
        "A sanitization of this target is already running or waiting to resume.",
    )
    WIPE_JOB_NOT_FOUND = (
        "io.mfpsecd.Wipe.JobNotFound",
        EX_DATAERR,
        (("job", str),),
        "No sanitization job has this id.",
    )
    WIPE_CONFIRMATION_REQUIRED = (
        "io.mfpsecd.Wipe.ConfirmationRequired",
        EX_NOPERM,
        (("target", str), ("reason", str)),
        "This purge erases more than the target, or cannot reach the level asked for: only a "
        "service engineer may start it, with confirm=true.",
    )
    WIPE_DEVICE_STUCK = (
        "io.mfpsecd.Wipe.DeviceStuck",
        EX_IOERR,
        (("target", str), ("seconds", int)),
        "The device gave no result for its purge command within the bound (three times its "
        "own estimate, at least wipe.purge_timeout_min): the purge is FAILED and the device "
        "needs attention.",
    )
    WIPE_CERTIFICATE_INVALID = (
        "io.mfpsecd.Wipe.CertificateInvalid",
        EX_DATAERR,
        (("reason", str),),
        "The sanitization certificate is malformed, altered, or not signed by this device.",
    )
    WIPE_CERTIFICATE_FOREIGN = (
        "io.mfpsecd.Wipe.CertificateForeign",
        EX_DATAERR,
        (("fingerprint", str),),
        "The certificate's signature is intact, but no identity key this device has had made "
        "it (fingerprint: the key the document carries): this device did not issue it.",
    )
    WIPE_MEDIUM_CHANGED = (
        "io.mfpsecd.Wipe.MediumChanged",
        EX_DATAERR,
        (("target", str), ("reason", str)),
        "The target is not the medium the sanitization started on (another disk was put in "
        "its place while the job was interrupted): the job is FAILED and certifies nothing. "
        "The medium that was removed still holds its data; start over on the one now there.",
    )
    STORE_OBJECT_NOT_FOUND = (
        "io.mfpsecd.Store.ObjectNotFound",
        EX_DATAERR,
        (("object", str),),
        "The job store holds no object with this id (or it was deleted).",
    )
    STORE_INTEGRITY = (
        "io.mfpsecd.Store.IntegrityFailure",
        EX_DATAERR,
        (("object", str), ("segment", int)),
        "The stored object fails authentication from this segment on (altered, truncated, "
        "or not this object's): no plaintext is returned.",
    )
    STORE_IO_ERROR = (
        "io.mfpsecd.Store.IoError",
        EX_IOERR,
        (("object", str), ("reason", str)),
        "Reading the source, or writing or reading the store, failed; nothing was stored.",
    )
    STORE_FULL = (
        "io.mfpsecd.Store.StoreFull",
        EX_TEMPFAIL,
        (("object", str),),
        "The store's disk is full; the object was not stored.",
    )
    FIRMWARE_SIGNATURE_INVALID = (
        "io.mfpsecd.Firmware.SignatureInvalid",
        EX_DATAERR,
        (("reason", str),),
        "The firmware manifest is not signed by a key the built-in firmware root vouches "
        "for, or the signature does not match it: nothing of the image is used.",
    )
    FIRMWARE_MANIFEST_INVALID = (
        "io.mfpsecd.Firmware.ManifestInvalid",
        EX_DATAERR,
        (("reason", str), ("path", str)),
        "The firmware manifest breaks a rule (format, paths, duplicates, links leaving the "
        "tree, modes); path names the entry when there is one.",
    )
    FIRMWARE_TREE_MISMATCH = (
        "io.mfpsecd.Firmware.TreeMismatch",
        EX_DATAERR,
        (("reason", str), ("path", str)),
        "The firmware tree does not hold what its manifest lists (an extra, missing or "
        "changed entry).",
    )
    FIRMWARE_ROLLBACK = (
        "io.mfpsecd.Firmware.Rollback",
        EX_DATAERR,
        (("epoch", int), ("minimum", int)),
        "The firmware's security epoch is older than the device's anti-rollback counter.",
    )
    FIRMWARE_WRONG_MODEL = (
        "io.mfpsecd.Firmware.WrongModel",
        EX_DATAERR,
        (("model", str),),
        "The firmware is not made for this device's model.",
    )
    FIRMWARE_BUNDLE_INVALID = (
        "io.mfpsecd.Firmware.BundleInvalid",
        EX_DATAERR,
        (("reason", str),),
        "The bundle archive is not one the signing tool makes (order of members, kinds, "
        "names, sizes, or larger than a slot): nothing was written.",
    )
    FIRMWARE_REWRITE_PROHIBITED = (
        "io.mfpsecd.Firmware.RewriteProhibited",
        EX_NOPERM,
        (("since", str),),
        "The administrator has prohibited firmware rewriting; only an administrator can "
        "allow it again.",
    )
    FIRMWARE_UPDATE_IN_PROGRESS = (
        "io.mfpsecd.Firmware.UpdateInProgress",
        EX_TEMPFAIL,
        (),
        "Another firmware update is being written.",
    )
    FIRMWARE_UNAVAILABLE = (
        "io.mfpsecd.Firmware.Unavailable",
        EX_UNAVAILABLE,
        (("reason", str),),
        "The board has no firmware slots configured, or the anti-rollback counter or the "
        "slots cannot be read: nothing is verified or written.",
    )
    NETWORK_UNAVAILABLE = (
        "io.mfpsecd.Network.Unavailable",
        EX_UNAVAILABLE,
        (("reason", str),),
        "The packet filter cannot be reached (no nftables, or the board's network "
        "namespace is missing); the rules in the kernel are unchanged.",
    )
    STORE_VIRUS_FOUND = (
        "io.mfpsecd.Store.VirusFound",
        EX_DATAERR,
        (("signature", str), ("job_action", str)),
        "The data carries a virus and was not stored; job_action says what the job gets: "
        "execute (it goes on without this data) or delete (its stored data was deleted; "
        "do not execute it).",
    )
    STORE_SCAN_FAILED = (
        "io.mfpsecd.Store.ScanFailed",
        EX_TEMPFAIL,
        (("reason", str),),
        "The data could not be scanned for viruses and the administrator's setting "
        "refuses unscanned data (scan.on_failure): nothing was stored.",
    )
    REMOTE_REFUSED = (
        "io.mfpsecd.Remote.Refused",
        EX_NOPERM,
        (("reason", str),),
        "A remote panel session may not start (or go on) now: the function is off, the "
        "panel is in administrator mode or a user is logged in there, or the remote "
        "identity is locked out; reason says which.",
    )
    REMOTE_REQUEST_NOT_FOUND = (
        "io.mfpsecd.Remote.RequestNotFound",
        EX_DATAERR,
        (("request", str),),
        "No remote request or session of that id is in the state the call needs (it "
        "ended, expired, or was decided already).",
    )
    REMOTE_CODE_WRONG = (
        "io.mfpsecd.Remote.CodeWrong",
        EX_NOPERM,
        (("tries_left", int),),
        "The access code is not the one the panel shows; at 0 tries left the request is void.",
    )
    REMOTE_LOCKED_OUT = (
        "io.mfpsecd.Remote.LockedOut",
        EX_TEMPFAIL,
        (("seconds", int),),
        "Too many wrong access codes from this remote identity (or from all together): "
        "no request is taken from it for this many seconds.",
    )
    REMOTE_MANAGE_REQUIRED = (
        "io.mfpsecd.Remote.ManageRequired",
        EX_NOPERM,
        (("operation", str),),
        "The fleet agent is in monitor mode: the operation needs a manage window an "
        "administrator opens.",
    )
    USB_DEVICE_NOT_FOUND = (
        "io.mfpsecd.Usb.DeviceNotFound",
        EX_DATAERR,
        (("device", str),),
        "No USB device of that name is connected (it was unplugged, or the name is wrong: "
        "ListDevices gives the names).",
    )
    NETWORK_RULES_INVALID = (
        "io.mfpsecd.Network.RulesInvalid",
        EX_DATAERR,
        (("reason", str),),
        "The change would make the filter invalid (a malformed range, an unknown "
        "service): nothing was applied.",
    )
    NETWORK_APPLY_FAILED = (
        "io.mfpsecd.Network.ApplyFailed",
        EX_SOFTWARE,
        (("reason", str),),
        "The kernel refused the new rules; the previous rules stay in force.",
    )
    NETWORK_WOULD_LOCK_OUT = (
        "io.mfpsecd.Network.WouldLockOut",
        EX_DATAERR,
        (("address", str),),
        "The change would cut off the caller's own remote session; repeat it with "
        "confirm=true to apply it anyway.",
    )
    # Seen only by clients: the daemon never sends these.
    DAEMON_UNREACHABLE = (
        "io.mfpsecd.Client.DaemonUnreachable",
        EX_UNAVAILABLE,
        (("address", str), ("reason", str)),
        "The client could not connect to the daemon's socket.",
    )
    TIMEOUT = (
        "io.mfpsecd.Client.Timeout",
        EX_TEMPFAIL,
        (("seconds", float),),
        "The daemon did not answer in time.",
    )
    UNKNOWN_ERROR = (
        "io.mfpsecd.Client.UnknownError",
        EX_SOFTWARE,
        (("name", str),),
        "The daemon answered with an error this client does not know (version skew).",
    )

    def __init__(
        self,
        wire_name: str,
        exit_status: int,
        params: tuple[tuple[str, type], ...],
        meaning: str,
    ) -> None:
        self.wire_name = wire_name
        self.exit_status = exit_status
        self.params = params
        self.meaning = meaning

    @property
    def interface(self) -> str:
        return self.wire_name.rsplit(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.wire_name.rsplit(".", 1)[1]

    @classmethod
    def from_wire(cls, name: str) -> ErrorCode | None:
        return _BY_WIRE_NAME.get(name)


_BY_WIRE_NAME: dict[str, ErrorCode] = {code.wire_name: code for code in ErrorCode}

# Errors every method may answer, whether or not it declares them.
COMMON_ERRORS: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.INVALID_PARAMETER,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.INTERNAL,
        ErrorCode.BUSY,
        # Any audited operation fails, closed, when its record cannot be made durable.
        ErrorCode.AUDIT_FULL,
        ErrorCode.STATE_UNAVAILABLE,
        # Checked before any handler runs, for every method that needs a role.
        ErrorCode.AUTHENTICATION_REQUIRED,
        # After a failed power-on self-test every security function answers this (B-2).
        ErrorCode.SELF_TEST_FAILED,
    }
)


class MfpsecError(Exception):
    """A failure with a stable code and typed parameters that may be shown to the caller.

    Parameters travel on the wire; never put secrets, paths of secrets or key material in them.
    """

    def __init__(self, code: ErrorCode, message: str | None = None, /, **params: Any) -> None:
        declared = {name for name, _ in code.params}
        unknown = set(params) - declared
        if unknown:
            raise TypeError(f"{code.name} has no parameter(s) {sorted(unknown)}")
        self.code = code
        self.params = params
        self.message = message or code.meaning
        super().__init__(self.message)

    def __str__(self) -> str:
        detail = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.message} [{self.code.wire_name}{': ' + detail if detail else ''}]"
