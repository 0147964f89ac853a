"""The key backup file (K-3): format only, no crypto and no I/O.

    magic "MFPSKEYB" | version u16 | header length u16 | header (JSON)
    | nonce (12) | AES-256-GCM(sealed key, AAD = everything before the nonce)
    | SHA-256 of everything before it (32)

The header is public: format, creation time, the fingerprint of the device's wrapping
key (so a backup from another device is refused before any passphrase is tried), the
Argon2id parameters and salt, and the key's public area (needed to re-import it). The
trailing digest tells a damaged or truncated file apart from a wrong passphrase, which
the GCM tag alone cannot.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import msgspec

from mfpsecd.base.errors import ErrorCode, MfpsecError

MAGIC = b"MFPSKEYB"
VERSION = 1
NONCE_BYTES = 12
DIGEST_BYTES = 32
TAG_BYTES = 16
MAX_FILE_BYTES = 64 * 1024
SUFFIX = ".mfpkb"
_PREFIX = struct.Struct(">8sHH")


class KdfParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    algorithm: str  # "argon2id"
    memory_kib: int
    iterations: int
    lanes: int
    salt: str  # base64


class BackupHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    created_at: str
    device_fingerprint: str  # SHA-256 of the wrapping key's SubjectPublicKeyInfo, hex
    key_backend: str  # "tpm": a TPM2B_SENSITIVE; "software": a PKCS#8 private key
    key_public: str  # base64: the TPM2B_PUBLIC (tpm) or SubjectPublicKeyInfo (software)
    kdf: KdfParams

    @property
    def public_bytes(self) -> bytes:
        return base64.b64decode(self.key_public, validate=True)

    @property
    def salt(self) -> bytes:
        return base64.b64decode(self.kdf.salt, validate=True)


class ParsedBackup(msgspec.Struct, frozen=True):
    header: BackupHeader
    aad: bytes  # the authenticated prefix
    nonce: bytes
    sealed: bytes  # ciphertext || tag


_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder(BackupHeader)


def prefix(header: BackupHeader) -> bytes:
    body = _encoder.encode(header)
    return _PREFIX.pack(MAGIC, VERSION, len(body)) + body


def assemble(aad: bytes, nonce: bytes, sealed: bytes) -> bytes:
    if len(nonce) != NONCE_BYTES:
        raise ValueError("nonce must be 12 bytes")
    body = aad + nonce + sealed
    return body + hashlib.sha256(body).digest()


def _invalid(reason: str) -> MfpsecError:
    return MfpsecError(ErrorCode.BACKUP_INVALID, reason=reason)


def parse(data: bytes) -> ParsedBackup:
    """Check everything that can be checked without the passphrase."""
    if len(data) > MAX_FILE_BYTES:
        raise _invalid(f"larger than {MAX_FILE_BYTES} bytes: not a key backup")
    if len(data) < _PREFIX.size or data[: len(MAGIC)] != MAGIC:
        raise _invalid("not an mfpsecd key backup")
    _, version, header_len = _PREFIX.unpack_from(data)
    if version != VERSION:
        raise _invalid(f"format version {version} is not supported (this daemon reads {VERSION})")
    minimum = _PREFIX.size + header_len + NONCE_BYTES + TAG_BYTES + 1 + DIGEST_BYTES
    if len(data) < minimum:
        raise _invalid("truncated")
    body, digest = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != digest:
        raise _invalid("damaged or truncated (checksum mismatch)")
    aad_end = _PREFIX.size + header_len
    try:
        header = _header_decoder.decode(data[_PREFIX.size : aad_end])
        if header.kdf.algorithm != "argon2id":
            raise _invalid(f"unknown key derivation {header.kdf.algorithm!r}")
        header.public_bytes  # noqa: B018 (validates the base64)
        header.salt  # noqa: B018
    except (msgspec.DecodeError, ValueError):
        raise _invalid("damaged header") from None
    return ParsedBackup(
        header=header,
        aad=data[:aad_end],
        nonce=data[aad_end : aad_end + NONCE_BYTES],
        sealed=body[aad_end + NONCE_BYTES :],
    )


def file_name(fingerprint: str, created_at: str) -> str:
    stamp = created_at.replace(":", "").replace("-", "").replace(".", "")
    return f"mfpsecd-keys-{fingerprint[:16]}-{stamp}{SUFFIX}"
