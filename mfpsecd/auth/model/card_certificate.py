"""Is a PKI card's certificate acceptable for logging in (SPEC A-8)? It must chain to one
of the administrator's trust anchors (RFC 5280 path validation by `cryptography`'s
verifier, client profile: validity at `now`, basic constraints, name constraints, the
clientAuth extended key usage), and its key usage must allow digital signatures, since
the card proves possession by signing a fresh challenge.

Pure: the caller passes the time and the anchors.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from mfpsecd.base.errors import ErrorCode, MfpsecError

# The Web PKI client profile requires a subjectAltName; card certificates often carry
# only a subject (or a UPN otherName): the card is bound by its fingerprint, not a name.
_CARD_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


def fingerprint(der: bytes) -> str:
    """How a card is bound to a user: the SHA-256 of its certificate."""
    return hashlib.sha256(der).hexdigest()


def _rejected(reason: str) -> MfpsecError:
    return MfpsecError(ErrorCode.CERTIFICATE_REJECTED, reason=reason)


def check(
    der: bytes,
    anchors: list[x509.Certificate],
    intermediates: list[x509.Certificate],
    now: dt.datetime,
) -> x509.Certificate:
    """The parsed certificate, or CertificateRejected saying why not."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise _rejected("not an X.509 certificate") from None
    if not anchors:
        raise _rejected("no trust anchors are configured (auth.card.trust_anchors)")
    if now < cert.not_valid_before_utc:
        raise _rejected("not valid yet")
    if now > cert.not_valid_after_utc:
        raise _rejected("expired")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise _rejected("its key usage does not allow digital signatures")
    verifier = (
        PolicyBuilder()
        .store(Store(anchors))
        .time(now)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_CARD_EE_POLICY
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(cert, intermediates)
    except VerificationError as exc:
        raise _rejected(f"not issued by a trusted CA ({exc})") from None
    return cert


def signed_by(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    """Did the certificate's key sign data (SHA-256; ECDSA DER or RSA PKCS#1 v1.5)?"""
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True
