"""The device identity key's public half as documents carry it, and the one signature it
makes (ECDSA P-256 over SHA-256, DER): what the daemon and a person with only the CLI
both need to check a document this device signed (a checkpoint, a certificate, a
posture report)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mfpsecd.base.errors import ErrorCode, MfpsecError


def fingerprint(spki_der: bytes) -> str:
    return hashlib.sha256(spki_der).hexdigest()


def pem(spki_der: bytes) -> str:
    return (
        serialization.load_der_public_key(spki_der)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def spki_of(pem_text: str) -> bytes:
    """DER SubjectPublicKeyInfo of a PEM EC public key; ValueError for anything else (a
    curve the library does not support included)."""
    try:
        key = serialization.load_pem_public_key(pem_text.encode())
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"unsupported public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC public key")
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def verifies(spki_der: bytes, signature: bytes, message: bytes) -> bool:
    """ECDSA P-256 over SHA-256(message), DER signature."""
    return _verifies(spki_der, signature, message, hashes.SHA256())


def verifies_digest(spki_der: bytes, signature: bytes, digest: bytes) -> bool:
    """The same over a SHA-256 digest already taken (what the TPM signs)."""
    return _verifies(spki_der, signature, digest, utils.Prehashed(hashes.SHA256()))


def _verifies(
    spki_der: bytes,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | utils.Prehashed,
) -> bool:
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, data, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def require_signed_by(
    candidates: Sequence[bytes],
    carried_pem: str,
    signature_hex: str,
    message: bytes,
    *,
    invalid: ErrorCode,
    foreign: ErrorCode,
) -> int:
    """Which of the candidate identity keys (DER SPKI) made a document's signature: its
    index. Never checked against the key the document carries: that one only tells a
    foreign document (`foreign`, with its fingerprint: another device's, or one
    re-signed with someone's own key) from a broken one (`invalid`, with a reason)."""
    try:
        carried = spki_of(carried_pem)
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise MfpsecError(invalid, reason="malformed public key or signature") from None
    for i, spki in enumerate(candidates):
        if verifies(spki, signature, message):
            return i
    if verifies(carried, signature, message):
        raise MfpsecError(foreign, fingerprint=fingerprint(carried))
    raise MfpsecError(invalid, reason="the signature does not match the document")
