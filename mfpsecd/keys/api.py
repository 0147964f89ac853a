"""io.mfpsecd.Keys: the key chain, the secret store and the device identity.

No method returns key or secret material (K-4, FPT_SKP_EXT.1): secrets go in (SetSecret),
only their names and metadata come out; backups are written by the daemon itself,
encrypted under the administrator's passphrase.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import Interface, Method, NoParams, restart

SecretName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}\Z")]
PathText = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Passphrase = Annotated[bytearray, msgspec.Meta(max_length=256)]


class TpmStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The TPM that is the key chain's root of trust (or its software stand-in)."""

    backend: str  # "device", "swtpm" or "software"
    # The TPM's vendor id, e.g. "IFX"; "none" for software keys, "unknown" before it is read.
    manufacturer: str
    # The TPM's firmware version, e.g. "7.85.4555.0"; "-" for software keys, "unknown" before
    # it is read.
    firmware: str


class KeyStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: str  # "starting", "ready", "locked" (restore the backup), "destroyed", "closed"
    reason: str  # why the chain is not ready, else empty
    software_keys: bool  # no TPM: keys protected only by file permissions
    tpm: TpmStatus  # the root of trust the keys are held by
    wrapping_key_fingerprint: str  # SHA-256 of the RSA key's SubjectPublicKeyInfo
    # SHA-256 of the device identity key's SubjectPublicKeyInfo (DER), hex, as
    # GetDeviceIdentity gives it; "" at start, before the chain is read.
    identity_fingerprint: str
    # The master key in use: 1 when the chain was created, one more at each rotation; 0
    # until the master keys are opened (starting, locked).
    master_key_generation: int
    # A rotation started but did not finish (power cut, or a damaged record stopped it):
    # secrets are sealed under either generation; RotateMasterKey finishes it.
    rotation_pending: bool
    created_at: str  # RFC 3339 UTC: when the chain was created; "" when unknown
    rotated_at: str  # RFC 3339 UTC of the last completed rotation; "" when never rotated
    last_backup_at: str  # RFC 3339 UTC of the last key backup written; "" when none was
    backups: int  # key backups written since the chain was created, scheduled ones included
    secrets: int  # secrets stored, the daemon's own included (auth.*, keys.backup-passphrase)
    # The PCR values the wrapping key opens under ("PCR 14 = 3f5a…"): the firmware
    # measurement it is bound to; empty when bound to none (no TPM, no firmware PCR).
    bound_to: str = ""


class SecretInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A stored secret's name and metadata (never its value)."""

    # [a-z0-9][a-z0-9._-]{0,127}. The daemon's own: auth.user.NAME (an account's password
    # verifiers), auth.totp.NAME (its TOTP seed) and keys.backup-passphrase (the backup
    # schedule's): SetSecret and DeleteSecret refuse every auth.* and keys.* name.
    name: str
    kind: str  # "password", "private-key", "credential", "totp-seed", "other"
    size: int  # of the value, in bytes
    generation: int  # master key generation it is sealed under
    created_at: str  # RFC 3339 UTC: when first stored under this name
    updated_at: str  # RFC 3339 UTC: when its value was last set (a rotation does not count)


class SecretList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    secrets: list[SecretInfo]  # every stored secret, by name


SecretKindName = Annotated[
    str, msgspec.Meta(pattern=r"^(password|private-key|credential|totp-seed|other)\Z")
]


class SetSecretParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # [a-z0-9][a-z0-9._-]{0,127}, not auth.* (the daemon's own: InvalidParameter); an
    # existing secret of that name is replaced.
    name: SecretName
    kind: SecretKindName  # "password", "private-key", "credential", "totp-seed" or "other"
    value: Annotated[bytearray, msgspec.Meta(min_length=1, max_length=65536)]  # base64


class SecretNameParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: SecretName  # as ListSecrets names it; not auth.* (the daemon's own: InvalidParameter)


class Empty(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class BackupParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: PathText  # a directory (e.g. a mounted USB stick) or a backup target id
    passphrase: Passphrase  # base64 of the printable-ASCII passphrase


class BackupResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The file written (absolute): mfpsecd-keys-<16 hex>-<time>.mfpkb in the target;
    # untrusted text: escape it to show it.
    path: str
    # The wrapping key's (as wrapping_key_fingerprint in GetKeyStatus): a restore takes the
    # backup only on this device.
    fingerprint: str
    created_at: str  # RFC 3339 UTC, also in the file's name
    size: int  # of the file, in bytes


class RestoreParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    source: PathText  # the backup file: an absolute path (a relative one is refused)
    passphrase: Passphrase  # base64 of the passphrase the backup was written under


class RestoreResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fingerprint: str  # the restored wrapping key's, as wrapping_key_fingerprint in GetKeyStatus


class RotateResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    generation: int  # the new master key's, now in use
    secrets: int  # secrets stored, all now sealed under it


class DestroyParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The wrapping key fingerprint (as in GetKeyStatus): proof the caller means this device.
    confirm_fingerprint: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]


class DeviceIdentity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    public_key_pem: str  # the identity key's public half (ECDSA P-256): PEM SubjectPublicKeyInfo
    fingerprint: str  # SHA-256 of the SubjectPublicKeyInfo (DER), hex
    certificate_pem: str  # self-signed by the identity key
    csr_pem: str  # a PKCS#10 request signed by the identity key, for an enterprise CA


class BackupTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A USB mass-storage partition (or unpartitioned stick) that can take a key backup."""

    id: str  # stable: the partition's udev ID_PATH or serial-based name
    device: str  # the block device node
    # As the USB device reports it ("" when it does not); untrusted text: escape it to
    # show it.
    vendor: str
    model: str  # as the USB device reports it; untrusted text: escape it to show it
    serial: str  # as the USB device reports it; untrusted text: escape it to show it
    size_bytes: int  # 0 when unknown
    filesystem: str  # as udev detects it, e.g. "vfat", "exfat"
    mount_point: str  # empty when not mounted (a backup needs it mounted)


class BackupTargets(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    targets: list[BackupTarget]  # every one plugged in now (into the configured ports, if any)


class IdentityEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One identity key this device has had."""

    fingerprint: str  # SHA-256 of the SubjectPublicKeyInfo (DER)
    public_key: str  # PEM
    replaced_at: str  # "" for the identity key the TPM holds now
    link: int  # the link from its successor that proves it; 0 for the current key


class IdentityLinkDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A new identity key vouching for the one it replaced (a restore onto a new TPM)."""

    seq: int  # 1 for the device's first change of identity; IdentityEntry.link names it
    # The signed bytes: canonical JSON naming the previous key and the new one.
    document: str
    signature: str  # hex DER ECDSA P-256/SHA-256 by the NEW key (the link's public_key)


class IdentityHistory(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    identities: list[IdentityEntry]  # the current key first, then each earlier one
    links: list[IdentityLinkDocument]  # one per earlier key, in the same order


class BackupSchedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The scheduled key backup (S-1's "backup schedule"); enabled false: none is set."""

    enabled: bool  # false: no schedule; the other fields are then empty or 0
    target: str  # a directory, or a backup target id (a USB stick, wherever it is mounted)
    every_days: int  # days between backups
    keep: int  # this device's newest backups kept in the target; older ones are deleted
    next_at: str  # RFC 3339 UTC of the next run ("" without a schedule)
    last_at: str  # RFC 3339 UTC of the last run ("" before the first)
    last_result: str  # "ok", "failed", or "" before the first run
    last_error: str  # why the last run failed: an error's wire name and reason
    last_path: str  # the file the last successful run wrote


class SetBackupScheduleParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: PathText  # a directory (absolute) or a backup target id (ListBackupTargets)
    every_days: Annotated[int, msgspec.Meta(ge=1, le=365)]  # days between backups, 1-365
    passphrase: Passphrase  # base64 of the printable-ASCII passphrase, as for BackupKeys
    # This device's newest backups kept in the target, 1-100 (default 5); older ones are
    # deleted after each backup.
    keep: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5


_CHAIN_ERRORS = (ErrorCode.KEYS_UNAVAILABLE, ErrorCode.KEY_INTEGRITY, ErrorCode.TPM_FAILED)

GET_KEY_STATUS = Method(
    name="GetKeyStatus",
    doc="State of the key chain, the TPM behind it, backups and rotation.",
    params=NoParams,
    result=KeyStatus,
    requires=Privilege.KEYS_READ,
)


LIST_SECRETS = Method(
    name="ListSecrets",
    doc="Names and metadata of the stored secrets (never their values). The names\n"
    "include every account's, so it needs the administrator role.",
    params=NoParams,
    result=SecretList,
    requires=Privilege.SECRETS_READ,
    errors=_CHAIN_ERRORS,
)


SET_SECRET = Method(
    name="SetSecret",
    doc="Store or replace a secret. value is base64; it is sealed at once and the\n"
    "daemon's copies are zeroed.",
    params=SetSecretParams,
    result=SecretInfo,
    requires=Privilege.SECRETS_WRITE,
    errors=_CHAIN_ERRORS,
    sensitive=True,
)


DELETE_SECRET = Method(
    name="DeleteSecret",
    doc="Delete a secret; its sealed record is overwritten before it is deleted.",
    params=SecretNameParams,
    result=Empty,
    requires=Privilege.SECRETS_WRITE,
    errors=(*_CHAIN_ERRORS, ErrorCode.SECRET_NOT_FOUND),
)


BACKUP_KEYS = Method(
    name="BackupKeys",
    doc="Write the wrapping key, encrypted under the passphrase (Argon2id +\n"
    "AES-256-GCM), to a new file in the target directory.",
    params=BackupParams,
    result=BackupResult,
    requires=Privilege.KEYS_ADMIN,
    errors=(
        *_CHAIN_ERRORS,
        ErrorCode.PASSPHRASE_TOO_WEAK,
        ErrorCode.BACKUP_TARGET_UNUSABLE,
    ),
    sensitive=True,
)


RESTORE_KEYS = Method(
    name="RestoreKeys",
    doc="Re-import the wrapping key from a backup into this (replacement) TPM.\n"
    "Only when the chain is locked; nothing changes on any error.",
    params=RestoreParams,
    result=RestoreResult,
    requires=Privilege.KEYS_ADMIN,
    errors=(
        *_CHAIN_ERRORS,
        ErrorCode.RESTORE_NOT_NEEDED,
        ErrorCode.BACKUP_INVALID,
        ErrorCode.WRONG_PASSPHRASE,
        ErrorCode.BACKUP_OTHER_DEVICE,
        ErrorCode.BACKUP_TARGET_UNUSABLE,
    ),
    sensitive=True,
)


ROTATE_MASTER_KEY = Method(
    name="RotateMasterKey",
    doc="A new master key; every secret is re-sealed under it (crash-safe).",
    params=NoParams,
    result=RotateResult,
    requires=Privilege.KEYS_ADMIN,
    errors=_CHAIN_ERRORS,
)


DESTROY_KEYS = Method(
    name="DestroyKeys",
    doc="Decommission: evict the TPM's copies, overwrite and delete every wrapped\n"
    "key and sealed secret, zero the keys in memory. Irreversible.",
    params=DestroyParams,
    result=Empty,
    requires=Privilege.KEYS_ADMIN,
    errors=_CHAIN_ERRORS,
)


GET_DEVICE_IDENTITY = Method(
    name="GetDeviceIdentity",
    doc="The device identity key's public half, a self-signed certificate and a\n"
    "certificate request (the private key never leaves the TPM).",
    params=NoParams,
    result=DeviceIdentity,
    requires=Privilege.KEYS_READ,
    errors=_CHAIN_ERRORS,
)


GET_IDENTITY_HISTORY = Method(
    name="GetIdentityHistory",
    doc="Every identity key this device has had, proven backwards from the one its\n"
    "TPM holds now: each earlier key by a link its successor signed. What a\n"
    "third party needs to check this device's certificates offline.",
    params=NoParams,
    result=IdentityHistory,
    requires=Privilege.KEYS_READ,
    errors=_CHAIN_ERRORS,
)


LIST_BACKUP_TARGETS = Method(
    name="ListBackupTargets",
    doc="USB mass-storage partitions that can take a key backup.",
    params=NoParams,
    result=BackupTargets,
    requires=Privilege.KEYS_READ,
)


WATCH_BACKUP_TARGETS = Method(
    name="WatchBackupTargets",
    doc="Stream the backup targets: the current list, then a new one whenever a\n"
    "USB stick appears, is mounted or goes away. Call with more=true.",
    params=NoParams,
    result=BackupTargets,
    requires=Privilege.KEYS_READ,
    streams=True,
    resume=restart,
)


GET_BACKUP_SCHEDULE = Method(
    name="GetBackupSchedule",
    doc="The scheduled key backup: where, how often, the last run and the next.",
    params=NoParams,
    result=BackupSchedule,
    requires=Privilege.KEYS_READ,
)


SET_BACKUP_SCHEDULE = Method(
    name="SetBackupSchedule",
    doc=(
        "Back the key chain up every N days under this passphrase (kept sealed in the\n"
        "secret store), keeping this device's newest N backups in the target. The first\n"
        "backup runs now: the schedule stands only if it succeeds."
    ),
    params=SetBackupScheduleParams,
    result=BackupSchedule,
    requires=Privilege.KEYS_ADMIN,
    errors=(
        *_CHAIN_ERRORS,
        ErrorCode.PASSPHRASE_TOO_WEAK,
        ErrorCode.BACKUP_TARGET_UNUSABLE,
    ),
    sensitive=True,
)


CLEAR_BACKUP_SCHEDULE = Method(
    name="ClearBackupSchedule",
    doc="No more scheduled backups; the sealed passphrase is deleted. Backups written stay.",
    params=NoParams,
    result=BackupSchedule,
    requires=Privilege.KEYS_ADMIN,
)


KEYS = Interface(
    name="io.mfpsecd.Keys",
    module=__name__,
    doc=(
        "The key chain (TPM root key -> RSA-2048 wrapping key -> AES-256 master key ->\n"
        "sealed secrets), the secret store and the device identity. No method returns\n"
        "key or secret material."
    ),
    methods=(
        GET_KEY_STATUS,
        LIST_SECRETS,
        SET_SECRET,
        DELETE_SECRET,
        BACKUP_KEYS,
        RESTORE_KEYS,
        ROTATE_MASTER_KEY,
        DESTROY_KEYS,
        GET_DEVICE_IDENTITY,
        GET_IDENTITY_HISTORY,
        LIST_BACKUP_TARGETS,
        WATCH_BACKUP_TARGETS,
        GET_BACKUP_SCHEDULE,
        SET_BACKUP_SCHEDULE,
        CLEAR_BACKUP_SCHEDULE,
    ),
)
