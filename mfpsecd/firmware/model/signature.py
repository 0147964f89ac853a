"""Is a firmware manifest signed by the vendor (SPEC F-1, F-2)? Checked on its raw bytes
before anything parses them.

A root built into the verifier (the board profile names it; the simulated board has a
development root) issues the vendor's signing certificate, directly or through up to
MAX_INTERMEDIATES intermediate CAs; the signing certificate travels with the bundle
(`signer.pem`), followed by the intermediates. Trust comes from the roots alone: a
certificate in the bundle that no path uses is ignored. Each intermediate must be a CA
allowed to sign certificates, within its issuer's path length. The signing certificate
must be an end entity allowed to sign (key usage digitalSignature, extended key usage
codeSigning) with an ECDSA P-384 or Ed25519 key; the signature is ECDSA with SHA-384, or
Ed25519, over the manifest bytes.

Revocation (as RAUC and fwupd retire a leaked signing key without new roots): the trust
store's CRLs, each checked against the certificate it names as issuer; a certificate of
the path listed by its issuer's CRL is refused, at update and at boot alike. A CRL past
its next update still revokes what it lists (an old list is not an empty one).

Validity dates are checked at update time. At boot the device clock may not be set yet
(a drained RTC battery), and a firmware that verified at its update must still boot:
that is the explicit ClockCheck.IGNORE, never a default.

Hybrid signatures (CNSA 2.0): a root whose key is ML-DSA-87 (FIPS 204) is a
post-quantum root. A trust store that holds one requires every manifest to carry, beside
its classical signature, an ML-DSA-87 signature over the same bytes by a signing
certificate that chains to a post-quantum root: stripping either signature, or taking
one from another manifest, is refused. A trust store without a post-quantum root checks
the classical signature alone and ignores an ML-DSA one (nothing there could vouch for
it): ECDSA-only bundles keep verifying on such devices, and hybrid bundles verify on
devices not yet given a post-quantum root.

Pure: the caller passes the roots and the time.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Sequence
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from mfpsecd.base.errors import ErrorCode, MfpsecError

MAX_SIGNATURE_BYTES = 256
ML_DSA_87_SIGNATURE_BYTES = 4627  # FIPS 204, table 2
MAX_INTERMEDIATES = 3


class Signed(NamedTuple):
    """One signature over the manifest and the certificates that vouch for it."""

    signature: bytes
    signer_pem: bytes  # the signing certificate, then its intermediate CAs


def post_quantum(cert: x509.Certificate) -> bool:
    return isinstance(cert.public_key(), mldsa.MLDSA87PublicKey)


class ClockCheck(enum.Enum):
    CHECK = "check"  # at update: the signing certificate must be valid now
    IGNORE = "ignore"  # at boot: the clock may be unset; the update checked the dates


def _invalid(reason: str) -> MfpsecError:
    return MfpsecError(ErrorCode.FIRMWARE_SIGNATURE_INVALID, reason=reason)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _issues(ca: x509.Certificate, cert: x509.Certificate, below: int) -> bool:
    """ca signed cert, may sign certificates, and allows `below` CAs under it."""
    if ca.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    constraints = _extension(ca, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        return False
    if constraints.path_length is not None and below > constraints.path_length:
        return False
    usage = _extension(ca, x509.KeyUsage)
    return usage is None or (isinstance(usage, x509.KeyUsage) and usage.key_cert_sign)


def _in_date(cert: x509.Certificate, clock: ClockCheck, now: dt.datetime) -> bool:
    return clock is ClockCheck.IGNORE or (
        cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    )


def _path(
    signer: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    clock: ClockCheck,
    now: dt.datetime,
) -> list[x509.Certificate]:
    """signer, the intermediates it needs, and the root: each issued by the next."""
    path = [signer]
    unused = list(intermediates)
    while True:
        below = len(path) - 1  # CAs between the signer and the next issuer
        root = next((r for r in roots if _issues(r, path[-1], below)), None)
        if root is not None:
            return [*path, root]
        ca = next(
            (c for c in unused if _issues(c, path[-1], below) and _in_date(c, clock, now)), None
        )
        if ca is None or len(path) > MAX_INTERMEDIATES:
            raise _invalid(
                "the signing certificate is not issued by a trusted firmware "
                "root, directly or through the intermediate CAs it came with"
            )
        unused.remove(ca)
        path.append(ca)


def _check_revocation(
    path: list[x509.Certificate], crls: Sequence[x509.CertificateRevocationList]
) -> None:
    for cert, issuer in itertools.pairwise(path):
        for crl in crls:
            if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise _invalid(
                    f"the certificate {cert.subject.rfc4514_string()} (serial "
                    f"{cert.serial_number:x}) is revoked by "
                    f"{issuer.subject.rfc4514_string()}"
                )


def _check_signer(signer: x509.Certificate, clock: ClockCheck, now: dt.datetime) -> None:
    constraints = _extension(signer, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise _invalid("the signing certificate is a CA, not a signing key")
    usage = _extension(signer, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        raise _invalid("the signing certificate's key usage does not allow signatures")
    eku = _extension(signer, x509.ExtendedKeyUsage)
    if not isinstance(eku, x509.ExtendedKeyUsage) or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise _invalid("the signing certificate is not for code signing")
    if clock is ClockCheck.CHECK:
        if now < signer.not_valid_before_utc:
            raise _invalid("the signing certificate is not valid yet")
        if now > signer.not_valid_after_utc:
            raise _invalid("the signing certificate has expired")


def verify(
    raw: bytes,
    signature: bytes,
    signer_pem: bytes,
    *,
    roots: list[x509.Certificate],
    clock: ClockCheck,
    now: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList] = (),
    post_quantum_signed: Signed | None = None,
) -> x509.Certificate:
    """The (classical) signing certificate, once every signature the trust store
    requires over raw checks out; FirmwareSignatureInvalid saying why not."""
    if not roots:
        raise _invalid("no firmware root is configured")
    classical = [r for r in roots if not post_quantum(r)]
    quantum_safe = [r for r in roots if post_quantum(r)]
    signer = _verify_one(
        raw, Signed(signature, signer_pem), classical, clock, now, crls, post_quantum=False
    )
    if quantum_safe:
        if post_quantum_signed is None:
            raise _invalid(
                "the trust store has a post-quantum root: an ML-DSA-87 signature is "
                "required beside the classical one, and this manifest has none"
            )
        _verify_one(raw, post_quantum_signed, quantum_safe, clock, now, crls, post_quantum=True)
    return signer


def _verify_one(  # noqa: PLR0917 (one signature, the roots for it and the time)
    raw: bytes,
    signed: Signed,
    roots: list[x509.Certificate],
    clock: ClockCheck,
    now: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList],
    *,
    post_quantum: bool,
) -> x509.Certificate:
    kind = "ML-DSA-87 " if post_quantum else ""  # the classical one is "the signature"
    if not roots:
        raise _invalid(f"no {kind or 'classical '}firmware root is configured")
    limit = ML_DSA_87_SIGNATURE_BYTES if post_quantum else MAX_SIGNATURE_BYTES
    if not signed.signature or len(signed.signature) > limit:
        raise _invalid(f"no {kind}signature, or not one of ours")
    try:
        certs = x509.load_pem_x509_certificates(signed.signer_pem)
    except ValueError:
        raise _invalid(f"the {kind}signing certificate is not PEM X.509") from None
    if len(certs) > 1 + MAX_INTERMEDIATES:
        raise _invalid(
            f"expected the signing certificate and at most {MAX_INTERMEDIATES} intermediate CAs"
        )
    signer = certs[0]
    path = _path(signer, certs[1:], roots, clock, now)
    _check_signer(signer, clock, now)
    _check_revocation(path, crls)
    key = signer.public_key()
    try:
        if post_quantum:
            if not isinstance(key, mldsa.MLDSA87PublicKey):
                raise _invalid("the post-quantum signing key is not ML-DSA-87")
            key.verify(signed.signature, raw)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
            key.verify(signed.signature, raw, ec.ECDSA(hashes.SHA384()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signed.signature, raw)
        else:
            raise _invalid("the signing key is neither ECDSA P-384 nor Ed25519")
    except InvalidSignature:
        raise _invalid(f"the {kind}signature does not match the manifest") from None
    return signer
