"""io.mfpsecd.Wipe: the disks that may be sanitized, sanitization jobs, and the signed
certificates they end with (SPEC W-2, W-4, W-5).

Starting a sanitization destroys a disk's contents: a logged-in caller types their
password again (it counts towards the lockout). A root peer without a session (the
recovery path, where nobody can log in) is not asked for one; the audit log and the
certificate then name the operator as "system".
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from mfpsecd.auth.api import ReauthPassword
from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import Interface, Method, NoParams

TargetId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]
JobId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")]
Mode = Annotated[int, msgspec.Meta(ge=1, le=8)]
CertificateBytes = Annotated[str, msgspec.Meta(min_length=1, max_length=1 << 20)]


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str  # as named in the board profile
    device: str  # the node (or, on the simulated board, the image file) written
    medium: str  # "hdd" or "flash" (the board profile's word: it picks the method)
    transport: str  # nvme, ata, scsi, mmc, usb, virtio, file, unknown
    rotational: str  # "yes", "no", or "unknown" (an image file)
    model: str
    serial: str
    size_bytes: int
    logical_block: int
    sanitizable: bool
    in_use: str  # why it may not be written now, else empty


class Targets(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    targets: list[Target]


class JobState(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    target: str
    mode: int
    state: JobState
    step: int  # index into steps of the one running; == len(steps) when all are done
    steps: list[str]  # "0x00", "0xFF", "random", "verify"
    position: int  # bytes of the current step done
    size_bytes: int
    started: str
    ended: str
    resumed: int  # times it resumed from a checkpoint after a restart
    error: str
    certificate_sha256: str  # digest of the signed body, once completed
    method: str  # "overwrite", or a purge's device command (nvme-format-erase, ...)
    level: str  # a purge's requested level ("clear" or "purge"), "" for Start's jobs
    # Why it failed or was cancelled, typed: the error's wire name (one of the interface's
    # errors, e.g. io.mfpsecd.Wipe.VerifyFailed) and its parameters; "" and {} otherwise.
    # `error` says the same as text.
    error_code: str = ""
    error_params: dict[str, str] = {}


class Jobs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    jobs: list[Job]


class StartParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: TargetId
    mode: Mode
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64


class Level(enum.Enum):
    CLEAR = "clear"  # NIST SP 800-88: defeats reading through the interface
    PURGE = "purge"  # defeats laboratory recovery


PurgeMethod = Annotated[str, msgspec.Meta(pattern=r"^([a-z0-9-]{1,40})?\Z")]


class PlanParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: TargetId
    level: Level = Level.PURGE
    method: PurgeMethod = ""  # a method to explain instead of the planner's choice


class SkippedMethod(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    method: str
    reason: str


class PurgePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: str
    level: Level  # asked for
    method: str  # the strongest the device supports ("overwrite" when it supports none)
    achieves: Level
    expect: str  # what the read-back must find: zeros, erased, changed, engine
    whole_device: bool  # erases more than the target (every namespace)
    estimate_s: float  # the device's own estimate, 0 when it gives none
    needs_confirmation: bool  # only a service engineer, with confirm=true
    shortfall: str  # why the level asked for is not reached, else ""
    skipped: list[SkippedMethod]  # each stronger method, and why not
    transport: str
    facts: list[str]  # the Identify fields the plan rests on
    evidence: list[str]  # the raw data read from the device (kept in the certificate)
    problems: list[str]  # what could not be read


class PurgeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: TargetId
    level: Level = Level.PURGE
    mode: Mode = 1  # the overwrite mode when the device supports no purge command (HDD)
    confirm: bool = False  # the service engineer's explicit confirmation, where needed
    # A method the service engineer names instead of the planner's choice (always needs
    # confirm): nvme-format-erase, ata-security-erase, scsi-format-unit, ... ("": plan)
    method: PurgeMethod = ""
    verify_all: bool = False  # read back every block instead of wipe.verify_percent
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64


class JobParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    job: JobId


class CertificateFormat(enum.Enum):
    JSON = "json"  # the signed document: what VerifyCertificate takes back
    TEXT = "text"  # a plain-text rendering
    PDF = "pdf"  # a printable rendering, base64
    # The signed bytes alone: the body as canonical JSON (sorted keys, no spaces), what
    # the document's signature (DER, hex) covers, for `openssl dgst -sha256 -verify`.
    SIGNED_BODY = "signed_body"


class CertificateParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    job: JobId
    format: CertificateFormat = CertificateFormat.JSON


class Certificate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: CertificateFormat
    content: str
    sha256: str  # digest of the signed body


class VerifyCertificateParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    document: CertificateBytes  # the JSON document as GetCertificate gave it


class CertificateVerdict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    valid: bool  # the signature matches the body (otherwise the call fails)
    this_device: bool  # signed by an identity key of this device (otherwise the call fails)
    id: str
    device: str
    target: str
    result: str
    sha256: str
    # The identity key that signed it (SHA-256 of its SubjectPublicKeyInfo), and when it
    # was replaced: "" for the key this device holds now.
    identity_fingerprint: str = ""
    identity_replaced_at: str = ""


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
)


CANCEL = Method(
    name="Cancel",
    doc="Stop a running sanitization. What was written stays written; there is no\ncertificate.",
    params=JobParams,
    result=Job,
    requires=Privilege.SANITIZE,
    errors=(ErrorCode.WIPE_JOB_NOT_FOUND,),
)


GET_CERTIFICATE = Method(
    name="GetCertificate",
    doc="The certificate of a completed sanitization (or of a purge the read-back\n"
    "failed), as the signed JSON document, plain text or a printable PDF (base64).",
    params=CertificateParams,
    result=Certificate,
    requires=Privilege.SANITIZE,
    errors=(ErrorCode.WIPE_JOB_NOT_FOUND, ErrorCode.KEYS_UNAVAILABLE, ErrorCode.KEY_INTEGRITY),
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
