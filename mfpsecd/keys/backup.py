"""The key chain's backup file (K-2): the wrapping key's sensitive area, exported by the
TPM, sealed with AES-256-GCM under a key derived from the passphrase with Argon2id, the
header (device fingerprint, public area, KDF parameters) as the associated data. A file
is opened only on the device whose wrapping key it holds."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from mfpsecd.base.durable import replace_file
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.model import backup_file
from mfpsecd.keys.model.passphrase import check_backup_passphrase
from mfpsecd.keys.ports import KeyCrypto, PassphraseCost, Tpm, TpmKey

BACKUP_COST = PassphraseCost(memory_kib=64 * 1024, iterations=3, lanes=1)
NONCE_BYTES = 12


@dataclass(frozen=True)
class BackupResult:
    path: Path
    fingerprint: str
    created_at: str
    size: int


def read_limited(path: Path) -> bytes:
    with open(path, "rb") as f:
        data = f.read(backup_file.MAX_FILE_BYTES + 1)
    return data


def backup_cost(kdf: backup_file.KdfParams) -> PassphraseCost:
    """A backup's Argon2id parameters, refused when out of range or too costly to try
    (a crafted file must not make the daemon allocate gigabytes)."""
    cost = PassphraseCost(kdf.memory_kib, kdf.iterations, kdf.lanes)
    if cost.memory_kib > 1024 * 1024 or cost.iterations > 64 or cost.lanes > 64:
        raise MfpsecError(ErrorCode.BACKUP_INVALID, reason="key derivation too costly")
    if cost.iterations < 1 or cost.lanes < 1 or cost.memory_kib < 8 * cost.lanes:
        raise MfpsecError(ErrorCode.BACKUP_INVALID, reason="key derivation out of range")
    return cost


class BackupFiles:
    """Writes the backup file of a wrapping key, and opens one for a restore."""

    def __init__(
        self, tpm: Tpm, crypto: KeyCrypto, cost: PassphraseCost, min_passphrase: int
    ) -> None:
        self._tpm = tpm
        self._crypto = crypto
        self._cost = cost
        self._min_passphrase = min_passphrase

    def check(self, passphrase: SecretBytes, target: Path) -> None:
        """What can be refused before the chain is locked for the backup."""
        check_backup_passphrase(passphrase.view(), self._min_passphrase)
        if not target.is_dir():
            raise MfpsecError(
                ErrorCode.BACKUP_TARGET_UNUSABLE, target=str(target), reason="not a directory"
            )

    async def write(
        self,
        passphrase: SecretBytes,
        target: Path,
        *,
        wrapping: TpmKey,
        public: bytes,
        device_fingerprint: str,
        now: str,
    ) -> BackupResult:
        """The backup of `wrapping` (as first created: `public`) written into `target`."""
        salt = os.urandom(16)
        header = backup_file.BackupHeader(
            created_at=now,
            device_fingerprint=device_fingerprint,
            key_backend="tpm" if self._tpm.info.hardware_root else "software",
            key_public=base64.b64encode(public).decode(),
            kdf=backup_file.KdfParams(
                "argon2id",
                self._cost.memory_kib,
                self._cost.iterations,
                self._cost.lanes,
                base64.b64encode(salt).decode(),
            ),
        )
        aad = backup_file.prefix(header)
        nonce = os.urandom(NONCE_BYTES)
        with (
            await self._tpm.export_key(wrapping) as sensitive,
            await asyncio.to_thread(
                self._crypto.passphrase_key, passphrase, salt, self._cost
            ) as kek,
        ):
            sealed = self._crypto.seal(kek, nonce, aad, sensitive.view())
        data = backup_file.assemble(aad, nonce, sealed)
        path = target / backup_file.file_name(device_fingerprint, now)
        try:
            await asyncio.to_thread(replace_file, path, data)
        except OSError as exc:
            raise MfpsecError(
                ErrorCode.BACKUP_TARGET_UNUSABLE,
                target=str(target),
                reason=exc.strerror or type(exc).__name__,
            ) from None
        return BackupResult(path, device_fingerprint, now, len(data))

    async def open(
        self,
        passphrase: SecretBytes,
        source: Path,
        *,
        ours: str,
        same_key: Callable[[bytes], Awaitable[bool]],
    ) -> SecretBytes:
        """The backup file read, checked to be this device's (its fingerprint `ours`, and
        `same_key` of its public area), and opened with the passphrase. → the wrapping
        key's sensitive area (the caller zeroes it)."""
        try:
            data = await asyncio.to_thread(read_limited, source)
        except OSError as exc:
            raise MfpsecError(
                ErrorCode.BACKUP_TARGET_UNUSABLE,
                target=str(source),
                reason=exc.strerror or type(exc).__name__,
            ) from None
        parsed = backup_file.parse(data)
        if parsed.header.device_fingerprint != ours or not await same_key(
            parsed.header.public_bytes
        ):
            raise MfpsecError(
                ErrorCode.BACKUP_OTHER_DEVICE, fingerprint=parsed.header.device_fingerprint[:16]
            )
        cost = backup_cost(parsed.header.kdf)
        with await asyncio.to_thread(
            self._crypto.passphrase_key, passphrase, parsed.header.salt, cost
        ) as kek:
            try:
                return self._crypto.open(kek, parsed.nonce, parsed.aad, parsed.sealed)
            except MfpsecError as exc:
                if exc.code is ErrorCode.KEY_INTEGRITY:
                    raise MfpsecError(ErrorCode.WRONG_PASSPHRASE) from None
                raise
