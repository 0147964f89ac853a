"""io.mfpsecd.Firmware: the installed firmware slots, verification, update and the
administrator's rewrite lock (SPEC F-1..F-4, B-1).

A bundle archive (made by `mfpsecd fw-sign --archive`) reaches the daemon as a
descriptor passed on the side channel (io.mfpsecd.Store's fd_socket_path), so the daemon
never opens a path a caller names. Updating and locking re-authenticate a logged-in
caller; only an administrator's session lifts the lock (F-3: a service engineer, or root
without a session, cannot).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from mfpsecd.auth.api import ReauthPassword
from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.descriptors import Descriptor
from mfpsecd.varlink.schema import Interface, Method, NoParams

SlotName = Annotated[str, msgspec.Meta(pattern=r"^(a|b)?\Z")]


class Slot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One of the two firmware slots, as its manifest says (read here; Verify checks it)."""

    name: str  # "a" or "b"
    # committed (it boots), trial (the next boot tries it), failed (the last whose trial or
    # verification failed), retired (epoch below the floor), written (none of these),
    # empty, invalid (its manifest cannot be read)
    state: str
    version: str  # the firmware version; "" when empty or invalid
    epoch: int  # its security epoch; 0 when empty or invalid
    manifest_sha256: str  # hex SHA-256 of its signed manifest; "" when empty or invalid


class BootVerification(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the boot unit found at this power-on (empty result: it did not run)."""

    result: str  # "verified", "failed" or ""
    at: str  # RFC 3339 UTC, when it ran
    mode: str  # the security mode it ran in: normal or enhanced
    slot: str  # the slot that verified and boots ("" when none did)
    trial: bool  # that slot is a newly written one on trial
    version: str  # the firmware version booted ("" when none verified)
    epoch: int  # its security epoch (0 when none verified)
    manifest_sha256: str  # hex SHA-256 of its signed manifest: what was extended into the PCR
    pcr: int  # the PCR index it was measured into (0 when none verified)
    pcr_value: str  # "" when there is no TPM to measure into
    reason: str  # failures on the way (a slot that did not verify), else ""


class FirmwareStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: str  # the device model (board profile) a bundle must list to be installed
    active: str  # the committed slot
    pending: str  # a written slot the next boot tries ("" if none)
    tries: int  # boot attempts it has left
    boot: BootVerification  # at this power-on
    counter: int  # the anti-rollback floor (-1: unreadable)
    rewrite_prohibited: bool  # true: Lock is in force, no update is written
    # Who last locked or unlocked (also when it is allowed now): a user name, or the
    # caller's origin ("system", ...) without a session; "" if never. Untrusted text:
    # escape it to show it.
    prohibited_by: str
    prohibited_at: str  # RFC 3339 UTC, when; "" if never
    slots: list[Slot]  # a, then b
    last_failed: str  # the last slot that failed to verify or boot, and why
    last_failed_reason: str  # e.g. "ran out of boot attempts"; "" when last_failed is ""


class VerifyParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # An archive to check (nothing is written), or else an installed slot ("" : the one
    # running).
    descriptor: Descriptor | None = None
    slot: SlotName = ""  # without a descriptor: "a", "b", or "" for the one running


class Verification(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    product: str  # as the signed manifest names it
    version: str  # the firmware version
    epoch: int  # its security epoch: below the anti-rollback floor it is refused
    models: list[str]  # the device models it may be installed on
    manifest_sha256: str  # hex SHA-256 of the signed manifest: what boot measures into the PCR
    signer: str  # the subject of the vendor certificate that signed it (RFC 4514)
    files: int  # files in the tree, each checked against its SHA-256 in the manifest
    bytes: int  # their total size in bytes


class UpdateParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    descriptor: Descriptor  # readable: the bundle archive
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64


class Staged(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    slot: str  # written, verified, tried at the next boot
    version: str  # the firmware version written
    epoch: int  # its security epoch (the floor is raised to it once it booted)
    manifest_sha256: str  # hex SHA-256 of its signed manifest
    tries: int  # boot attempts it gets before the committed slot boots again


class LockParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64


class LockState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    rewrite_prohibited: bool  # true: no update is written until an administrator unlocks
    # Who set it so (the caller): a user name, or the caller's origin ("system", ...)
    # without a session. Untrusted text: escape it to show it.
    by: str
    at: str  # RFC 3339 UTC


_VERIFY_ERRORS = (
    ErrorCode.FIRMWARE_SIGNATURE_INVALID,
    ErrorCode.FIRMWARE_MANIFEST_INVALID,
    ErrorCode.FIRMWARE_TREE_MISMATCH,
    ErrorCode.FIRMWARE_ROLLBACK,
    ErrorCode.FIRMWARE_WRONG_MODEL,
    ErrorCode.FIRMWARE_BUNDLE_INVALID,
    ErrorCode.FIRMWARE_UNAVAILABLE,
)
_REAUTH = (
    ErrorCode.AUTHENTICATION_REQUIRED,
    ErrorCode.AUTHENTICATION_FAILED,
    ErrorCode.ACCOUNT_LOCKED,
)

GET_STATUS = Method(
    name="GetStatus",
    doc="The slots, what the boot verification found, the anti-rollback floor\n"
    "and the rewrite lock.",
    params=NoParams,
    result=FirmwareStatus,
    requires=Privilege.FIRMWARE_READ,
    errors=(ErrorCode.FIRMWARE_UNAVAILABLE,),
)


VERIFY = Method(
    name="Verify",
    doc="Verify an installed slot (default: the running one) against its signed\n"
    "manifest, or a bundle archive as an update would, writing nothing.",
    params=VerifyParams,
    result=Verification,
    requires=Privilege.FIRMWARE_READ,
    errors=_VERIFY_ERRORS,
    passes_descriptor=True,
)


UPDATE = Method(
    name="Update",
    doc="Write a bundle archive to the inactive slot: refused while rewriting is\n"
    "prohibited; verified before anything is written and again in full once\n"
    "written; the next boot tries it, and it is committed (and the\n"
    "anti-rollback counter raised) only once it booted and verified.",
    params=UpdateParams,
    result=Staged,
    requires=Privilege.FIRMWARE_UPDATE,
    errors=(
        *_VERIFY_ERRORS,
        ErrorCode.FIRMWARE_REWRITE_PROHIBITED,
        ErrorCode.FIRMWARE_UPDATE_IN_PROGRESS,
        *_REAUTH,
    ),
    sensitive=True,
    passes_descriptor=True,
)


LOCK = Method(
    name="Lock",
    doc="Prohibit firmware rewriting (F-3): no update is written, whoever asks,\n"
    "until an administrator allows it again.",
    params=LockParams,
    result=LockState,
    requires=Privilege.FIRMWARE_LOCK,
    errors=(ErrorCode.FIRMWARE_UNAVAILABLE, *_REAUTH),
    sensitive=True,
)


UNLOCK = Method(
    name="Unlock",
    doc="Allow firmware rewriting again: an administrator's session only.",
    params=LockParams,
    result=LockState,
    requires=Privilege.FIRMWARE_LOCK,
    errors=(ErrorCode.FIRMWARE_UNAVAILABLE, *_REAUTH),
    sensitive=True,
)


FIRMWARE = Interface(
    name="io.mfpsecd.Firmware",
    module=__name__,
    doc=(
        "The device's firmware: two slots (A/B), each a vendor-signed image verified\n"
        "at update and at every boot, a security epoch that never goes back (a TPM NV\n"
        "counter), and the administrator's prohibition of rewriting."
    ),
    methods=(
        GET_STATUS,
        VERIFY,
        UPDATE,
        LOCK,
        UNLOCK,
    ),
)
