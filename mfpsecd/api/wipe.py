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

from mfpsecd.api.access import Privilege
from mfpsecd.api.auth import ReauthPassword
from mfpsecd.api.schema import Interface, Method, NoParams
from mfpsecd.errors import ErrorCode

TargetId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
JobId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
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


class Jobs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    jobs: list[Job]


class StartParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: TargetId
    mode: Mode
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64


class JobParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    job: JobId


class CertificateFormat(enum.Enum):
    JSON = "json"  # the signed document: what VerifyCertificate takes back
    TEXT = "text"  # a plain-text rendering
    PDF = "pdf"  # a printable rendering, base64


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
    this_device: bool  # signed by this device's identity key
    id: str
    device: str
    target: str
    result: str
    sha256: str


_TARGET_ERRORS = (ErrorCode.WIPE_TARGET_UNKNOWN, ErrorCode.WIPE_TARGET_REFUSED)

WIPE = Interface(
    name="io.mfpsecd.Wipe",
    doc=(
        "Sanitization of the disks the board profile lists: overwrite modes 1-8 (one\n"
        "pass on flash), a read-back of every byte, resumable after a power cut, and a\n"
        "certificate signed with the device identity key at the end."
    ),
    methods=(
        Method(
            name="ListTargets",
            doc="The board profile's disks, as the kernel describes them now.",
            params=NoParams, result=Targets, requires=Privilege.SANITIZE,
        ),
        Method(
            name="Start",
            doc="Start sanitizing a target with a mode (1-8). A logged-in caller gives\n"
                "their password again. Returns at once; Watch follows the progress.",
            params=StartParams, result=Job, requires=Privilege.SANITIZE,
            errors=(*_TARGET_ERRORS, ErrorCode.WIPE_ALREADY_RUNNING,
                    ErrorCode.AUTHENTICATION_REQUIRED, ErrorCode.AUTHENTICATION_FAILED,
                    ErrorCode.ACCOUNT_LOCKED),
            sensitive=True,
        ),
        Method(
            name="ListJobs",
            doc="Every sanitization this device has run or is running.",
            params=NoParams, result=Jobs, requires=Privilege.SANITIZE,
        ),
        Method(
            name="GetJob",
            doc="One sanitization.",
            params=JobParams, result=Job, requires=Privilege.SANITIZE,
            errors=(ErrorCode.WIPE_JOB_NOT_FOUND,),
        ),
        Method(
            name="Watch",
            doc="Stream a sanitization's progress: its state now, then a reply at each\n"
                "change (about four a second while a pass runs) until it has ended; the\n"
                "last reply carries the result. Call with more=true.",
            params=JobParams, result=Job, requires=Privilege.SANITIZE,
            errors=(ErrorCode.WIPE_JOB_NOT_FOUND,), streams=True,
        ),
        Method(
            name="Cancel",
            doc="Stop a running sanitization. What was written stays written; there is no\n"
                "certificate.",
            params=JobParams, result=Job, requires=Privilege.SANITIZE,
            errors=(ErrorCode.WIPE_JOB_NOT_FOUND,),
        ),
        Method(
            name="GetCertificate",
            doc="The certificate of a completed sanitization, as the signed JSON document,\n"
                "plain text or a printable PDF (base64).",
            params=CertificateParams, result=Certificate, requires=Privilege.SANITIZE,
            errors=(ErrorCode.WIPE_JOB_NOT_FOUND,),
        ),
        Method(
            name="VerifyCertificate",
            doc="Check a certificate's signature, and whether this device signed it.",
            params=VerifyCertificateParams, result=CertificateVerdict,
            requires=Privilege.SANITIZE, errors=(ErrorCode.WIPE_CERTIFICATE_INVALID,),
        ),
    ),
)
