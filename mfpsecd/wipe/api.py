"""io.mfpsecd.Wipe: the disks that may be sanitized, sanitization jobs, and the signed
certificates they end with (SPEC W-2, W-4, W-5).

Starting a sanitization destroys a disk's contents: a logged-in caller types their
password again (it counts towards the lockout). A root peer without a session may
sanitize only when `wipe.factory_mode` is set (a factory line, where nobody can log in
yet); the audit log and the certificate then name the operator "factory". Any other
caller without a session is refused (AuthenticationRequired).
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from mfpsecd.auth.api import ReauthPassword
from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import Interface, Method, NoParams, restart

TargetId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]
JobId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")]
Mode = Annotated[int, msgspec.Meta(ge=1, le=8)]
CertificateBytes = Annotated[str, msgspec.Meta(min_length=1, max_length=1 << 20)]


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A disk of the board profile, as the kernel (or the simulator) describes it now."""

    id: str  # as named in the board profile
    device: str  # the node (or, on the simulated board, the image file) written
    medium: str  # "hdd" or "flash" (the board profile's word: it picks the method)
    transport: str  # nvme, ata, scsi, mmc, usb, virtio, file, unknown
    rotational: str  # "yes", "no", or "unknown" (an image file)
    model: str  # as the disk reports it, "" if unknown; untrusted text: escape it to show it
    serial: str  # as the disk reports it, "" if unknown; untrusted text: escape it to show it
    size_bytes: int  # 0 when it cannot be read (missing, a partition, ...): then refused
    logical_block: int  # the logical block size in bytes (512 when the kernel does not say)
    sanitizable: bool  # the board profile allows sanitizing it (false: Start and Purge refuse)
    in_use: str  # why it may not be written now, else empty


class Targets(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    targets: list[Target]  # every disk of the board profile, in its order


class JobState(enum.Enum):
    """Where a sanitization job stands."""

    RUNNING = "running"  # also while the daemon is down: it resumes at the next start
    COMPLETED = "completed"  # every step done and read back (the certificate says the level)
    FAILED = "failed"  # stopped by an error, or the read-back found data (see error_code)
    CANCELLED = "cancelled"  # stopped by Cancel


class Job(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One sanitization (Start's overwrite or a Purge): its steps, progress and outcome."""

    id: str  # "<target>-<UTC start, YYYYMMDDTHHMMSS>-<4 hex digits>"
    target: str  # the target's id (ListTargets)
    mode: int  # the overwrite mode asked for, 1-8 (a purge by device command does not use it)
    state: JobState  # any state but "running" is final
    step: int  # index into steps of the one running; == len(steps) when all are done
    steps: list[str]  # "0x00", "0xFF", "random", "verify"
    position: int  # bytes of the current step done
    size_bytes: int  # the target's size in bytes when it started: what each pass covers
    started: str  # RFC 3339 UTC
    ended: str  # RFC 3339 UTC; "" while running
    resumed: int  # times it resumed from a checkpoint after a restart
    # Why it failed or was cancelled, as text (the error's wire name and parameters); on a
    # completed job, a note while its certificate could not be signed yet; else "".
    error: str
    certificate_sha256: str  # digest of the signed body, once completed
    method: str  # "overwrite", or a purge's device command (nvme-format-erase, ...)
    level: str  # a purge's requested level ("clear" or "purge"), "" for Start's jobs
    # Why it failed or was cancelled, typed: the error's wire name (one of the interface's
    # errors, e.g. io.mfpsecd.Wipe.VerifyFailed) and its parameters; "" and {} otherwise.
    # `error` says the same as text.
    error_code: str = ""
    error_params: dict[str, str] = {}  # by parameter name, each value as text


class Jobs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    jobs: list[Job]  # oldest first


class StartParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: TargetId  # a target's id (ListTargets)
    # The discard mode, whose passes an HDD gets (the last one read back): 1 JEITA, 2 NSA,
    # 3 DoD 5220.22-M, 4 AR 380-19, 5 former NSA, 6 NATO, 7 VSITR, 8 AFSSI-5020. Flash
    # media get one 0x00 pass whatever the mode.
    mode: Mode
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64


class Level(enum.Enum):
    """A NIST SP 800-88 sanitization level."""

    CLEAR = "clear"  # NIST SP 800-88: defeats reading through the interface
    PURGE = "purge"  # defeats laboratory recovery


PurgeMethod = Annotated[str, msgspec.Meta(pattern=r"^([a-z0-9-]{1,40})?\Z")]


class PlanParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: TargetId  # a target's id (ListTargets)
    level: Level = Level.PURGE  # the level to plan for (default: purge)
    method: PurgeMethod = ""  # a method to explain instead of the planner's choice


class SkippedMethod(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A method stronger than the one planned, and why it is not used."""

    method: str  # a method name as PurgeParams.method takes it, e.g. nvme-sanitize-crypto
    reason: str  # e.g. "not an NVMe device", "reaches clear only"


class PurgePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: str  # the target's id, as asked
    level: Level  # asked for
    method: str  # the strongest the device supports ("overwrite" when it supports none)
    achieves: Level  # the level the method reaches (below `level`: see shortfall)
    expect: str  # what the read-back must find: zeros, erased, changed, engine
    whole_device: bool  # erases more than the target (every namespace)
    estimate_s: float  # the device's own estimate, 0 when it gives none
    needs_confirmation: bool  # only a service engineer, with confirm=true
    shortfall: str  # why the level asked for is not reached, else ""
    skipped: list[SkippedMethod]  # each stronger method, and why not
    # As the device probe found it: nvme, ata, mmc, sd, scsi, usb, virtio, file, unknown.
    transport: str
    facts: list[str]  # the Identify fields the plan rests on
    evidence: list[str]  # the raw data read from the device (kept in the certificate)
    problems: list[str]  # what could not be read


class PurgeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: TargetId  # a target's id (ListTargets)
    level: Level = Level.PURGE  # the level to reach (default: purge)
    mode: Mode = 1  # the overwrite mode when the device supports no purge command (HDD)
    confirm: bool = False  # the service engineer's explicit confirmation, where needed
    # A method the service engineer names instead of the planner's choice (always needs
    # confirm): nvme-format-erase, ata-security-erase, scsi-format-unit, ... ("": plan)
    method: PurgeMethod = ""
    verify_all: bool = False  # read back every block instead of wipe.verify_percent
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64


class JobParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    job: JobId  # a job's id (Job.id)


class CertificateFormat(enum.Enum):
    """The form GetCertificate gives a certificate in."""

    JSON = "json"  # the signed document: what VerifyCertificate takes back
    TEXT = "text"  # a plain-text rendering
    PDF = "pdf"  # a printable rendering, base64
    # The signed bytes alone: the body as canonical JSON (sorted keys, no spaces), what
    # the document's signature (DER, hex) covers, for `openssl dgst -sha256 -verify`.
    SIGNED_BODY = "signed_body"


class CertificateParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    job: JobId  # a job that has ended (a running one has no certificate: JobNotFound)
    format: CertificateFormat = CertificateFormat.JSON  # default: the signed JSON document


class Certificate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: CertificateFormat  # as asked
    content: str  # the certificate in that format (for pdf: the file's bytes, base64)
    sha256: str  # digest of the signed body


class VerifyCertificateParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    document: CertificateBytes  # the JSON document as GetCertificate gave it


class CertificateVerdict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    valid: bool  # the signature matches the body (otherwise the call fails)
    this_device: bool  # signed by an identity key of this device (otherwise the call fails)
    id: str  # the job it certifies (Job.id)
    # The controller that sanitized and signed, as the certificate names it:
    # "<model>, serial <serial>".
    device: str
    target: str  # the id of the target sanitized
    # success; clear-achieved (a purge asked for, only Clear reached, as confirmed by a
    # service engineer); failed; cancelled
    result: str
    sha256: str  # hex SHA-256 of the signed body, as Certificate.sha256
    # The identity key that signed it (SHA-256 of its SubjectPublicKeyInfo), and when it
    # was replaced: "" for the key this device holds now.
    identity_fingerprint: str = ""
    identity_replaced_at: str = ""  # RFC 3339 UTC


_TARGET_ERRORS = (ErrorCode.WIPE_TARGET_UNKNOWN, ErrorCode.WIPE_TARGET_REFUSED)

LIST_TARGETS = Method(
    name="ListTargets",
    doc="The board profile's disks, as the kernel describes them now.",
    params=NoParams,
    result=Targets,
    requires=Privilege.SANITIZE,
)


START = Method(
    name="Start",
    doc="Start sanitizing a target with a mode (1-8). A logged-in caller gives\n"
    "their password again. Returns at once; Watch follows the progress.",
    params=StartParams,
    result=Job,
    requires=Privilege.SANITIZE,
    errors=(
        *_TARGET_ERRORS,
        ErrorCode.WIPE_ALREADY_RUNNING,
        ErrorCode.AUTHENTICATION_REQUIRED,
        ErrorCode.AUTHENTICATION_FAILED,
        ErrorCode.ACCOUNT_LOCKED,
    ),
    sensitive=True,
)


PLAN_PURGE = Method(
    name="PlanPurge",
    doc="What a purge of the target would do: the device's own capabilities (NVMe\n"
    "Identify, ATA IDENTIFY, eMMC/SD), the strongest method for the level, and\n"
    "why each stronger one is not possible. Nothing is written.",
    params=PlanParams,
    result=PurgePlan,
    requires=Privilege.SANITIZE,
    errors=(*_TARGET_ERRORS, ErrorCode.INVALID_PARAMETER),
)


PURGE = Method(
    name="Purge",
    doc="Start a NIST SP 800-88 Clear or Purge with that method, then read the\n"
    "device back: a device that reports success and leaves data is a FAILED\n"
    "purge (with a signed certificate saying so). A plan that erases more than\n"
    "the target, or falls short of the level, needs a service engineer with\n"
    "confirm=true. A logged-in caller gives their password again.",
    params=PurgeParams,
    result=Job,
    requires=Privilege.SANITIZE,
    errors=(
        *_TARGET_ERRORS,
        ErrorCode.WIPE_ALREADY_RUNNING,
        ErrorCode.WIPE_CONFIRMATION_REQUIRED,
        ErrorCode.INVALID_PARAMETER,
        ErrorCode.AUTHENTICATION_REQUIRED,
        ErrorCode.AUTHENTICATION_FAILED,
        ErrorCode.ACCOUNT_LOCKED,
    ),
    sensitive=True,
)


LIST_JOBS = Method(
    name="ListJobs",
    doc="Every sanitization this device has run or is running.",
    params=NoParams,
    result=Jobs,
    requires=Privilege.SANITIZE,
)


GET_JOB = Method(
    name="GetJob",
    doc="One sanitization.",
    params=JobParams,
    result=Job,
    requires=Privilege.SANITIZE,
    errors=(ErrorCode.WIPE_JOB_NOT_FOUND,),
)


WATCH = Method(
    name="Watch",
    doc="Stream a sanitization's progress: its state now, then a reply at each\n"
    "change (about four a second while a pass runs) until it has ended; the\n"
    "last reply carries the result. Call with more=true.",
    params=JobParams,
    result=Job,
    requires=Privilege.SANITIZE,
    errors=(ErrorCode.WIPE_JOB_NOT_FOUND,),
    streams=True,
    resume=restart,
)


CANCEL = Method(
    name="Cancel",
    doc=(
        "Stop a running sanitization. What was written stays written; the job's\n"
        "certificate says it was cancelled (result cancelled)."
    ),
    params=JobParams,
    result=Job,
    requires=Privilege.SANITIZE,
    errors=(ErrorCode.WIPE_JOB_NOT_FOUND,),
)


GET_CERTIFICATE = Method(
    name="GetCertificate",
    doc="The certificate of a sanitization that has ended: completed, failed (a purge\n"
    "whose read-back found data, an I/O error) or cancelled, each with its result; as the\n"
    "signed JSON document, plain text or a printable PDF (base64).",
    params=CertificateParams,
    result=Certificate,
    requires=Privilege.SANITIZE,
    errors=(
        ErrorCode.WIPE_JOB_NOT_FOUND,
        ErrorCode.KEYS_UNAVAILABLE,
        ErrorCode.KEY_INTEGRITY,
        ErrorCode.PART_UNAVAILABLE,
    ),
)


VERIFY_CERTIFICATE = Method(
    name="VerifyCertificate",
    doc="Check a certificate against this device's identity keys, the one it holds\n"
    "now and every earlier one its identity history proves (never against the\n"
    "key the document carries). CertificateForeign: an intact signature by a key\n"
    "this device never had.",
    params=VerifyCertificateParams,
    result=CertificateVerdict,
    requires=Privilege.SANITIZE,
    errors=(
        ErrorCode.WIPE_CERTIFICATE_INVALID,
        ErrorCode.WIPE_CERTIFICATE_FOREIGN,
        ErrorCode.KEYS_UNAVAILABLE,
        ErrorCode.KEY_INTEGRITY,
    ),
)


WIPE = Interface(
    name="io.mfpsecd.Wipe",
    module=__name__,
    doc=(
        "Sanitization of the disks the board profile lists: overwrite modes 1-8 (one\n"
        "pass on flash), a read-back of every byte, resumable after a power cut, and a\n"
        "certificate signed with the device identity key at the end."
    ),
    methods=(
        LIST_TARGETS,
        START,
        PLAN_PURGE,
        PURGE,
        LIST_JOBS,
        GET_JOB,
        WATCH,
        CANCEL,
        GET_CERTIFICATE,
        VERIFY_CERTIFICATE,
    ),
)
