"""Is a firmware manifest signed by the vendor (SPEC F-1, F-2)? Checked on its raw bytes
before anything parses them.

The chain is one level: a root built into the verifier (the board profile names it; the
simulated board has a development root) issues the vendor's signing certificate, which
travels with the bundle. The signing certificate must be an end entity allowed to sign
(key usage digitalSignature, extended key usage codeSigning) with an ECDSA P-384 or
Ed25519 key; the signature is ECDSA with SHA-384, or Ed25519, over the manifest bytes.

Validity dates are checked at update time. At boot the device clock may not be set yet
(a drained RTC battery), and a firmware that verified at its update must still boot:
that is the explicit ClockCheck.IGNORE, never a default.

Pure: the caller passes the roots and the time.
"""

from __future__ import annotations

import datetime as dt
import enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from mfpsecd.errors import ErrorCode, MfpsecError

MAX_SIGNATURE_BYTES = 256


class ClockCheck(enum.Enum):
    CHECK = "check"  # at update: the signing certificate must be valid now
    IGNORE = "ignore"  # at boot: the clock may be unset; the update checked the dates


def _invalid(reason: str) -> MfpsecError:
    return MfpsecError(ErrorCode.FIRMWARE_SIGNATURE_INVALID, reason=reason)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]
               ) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _issuer(signer: x509.Certificate, roots: list[x509.Certificate]) -> x509.Certificate:
    for root in roots:
        if root.subject != signer.issuer:
            continue
        try:
            signer.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        constraints = _extension(root, x509.BasicConstraints)
        if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
            continue
        return root
    raise _invalid("the signing certificate is not issued by a trusted firmware root")


def _check_signer(signer: x509.Certificate, clock: ClockCheck, now: dt.datetime) -> None:
    constraints = _extension(signer, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise _invalid("the signing certificate is a CA, not a signing key")
    usage = _extension(signer, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        raise _invalid("the signing certificate's key usage does not allow signatures")
    eku = _extension(signer, x509.ExtendedKeyUsage)
    if not isinstance(eku, x509.ExtendedKeyUsage) or \
            ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise _invalid("the signing certificate is not for code signing")
    if clock is ClockCheck.CHECK:
        if now < signer.not_valid_before_utc:
            raise _invalid("the signing certificate is not valid yet")
        if now > signer.not_valid_after_utc:
            raise _invalid("the signing certificate has expired")


def verify(raw: bytes, signature: bytes, signer_pem: bytes, *,
           roots: list[x509.Certificate], clock: ClockCheck, now: dt.datetime
           ) -> x509.Certificate:
    """The signing certificate, once the signature over raw checks out;
    FirmwareSignatureInvalid saying why not."""
    if not roots:
        raise _invalid("no firmware root is configured")
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise _invalid("no signature, or not one of ours")
    try:
        certs = x509.load_pem_x509_certificates(signer_pem)
    except ValueError:
        raise _invalid("the signing certificate is not PEM X.509") from None
    if len(certs) != 1:
        raise _invalid("expected exactly one signing certificate")
    signer = certs[0]
    _issuer(signer, roots)
    _check_signer(signer, clock, now)
    key = signer.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
            key.verify(signature, raw, ec.ECDSA(hashes.SHA384()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, raw)
        else:
            raise _invalid("the signing key is neither ECDSA P-384 nor Ed25519")
    except InvalidSignature:
        raise _invalid("the signature does not match the manifest") from None
    return signer
