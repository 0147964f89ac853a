"""A throwaway firmware PKI for the tests: a root, a code-signing certificate it issued,
and the helpers that make certificates and revocation lists at a fixed time (NOW)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
Key = (
    ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | mldsa.MLDSA87PrivateKey
    | mldsa.MLDSA65PrivateKey
)


def name_of(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    subject: str,
    key: Key,
    issuer: str,
    issuer_key: Key,
    *,
    ca: bool,
    eku: bool = True,
    usage: bool = True,
    days: tuple[int, int] = (-1, 365),
    path_length: int | None = None,
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(name_of(subject))
        .issuer_name(name_of(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    b = b.add_extension(
        x509.KeyUsage(
            digital_signature=usage,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if eku and not ca:
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    # Ed25519 and ML-DSA sign the message itself: no separate hash.
    algorithm = None if not isinstance(issuer_key, ec.EllipticCurvePrivateKey) else hashes.SHA384()
    return b.sign(issuer_key, algorithm)


def pem_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


ROOT_KEY = ec.generate_private_key(ec.SECP384R1())
ROOT = make_cert("MFP firmware root", ROOT_KEY, "MFP firmware root", ROOT_KEY, ca=True)
SIGNER_KEY = ec.generate_private_key(ec.SECP384R1())
SIGNER = make_cert("MFP firmware signing 2026", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False)
# The post-quantum half of a hybrid signature (CNSA 2.0): an ML-DSA-87 root and signer.
PQ_ROOT_KEY = mldsa.MLDSA87PrivateKey.generate()
PQ_ROOT = make_cert(
    "MFP firmware root ML-DSA", PQ_ROOT_KEY, "MFP firmware root ML-DSA", PQ_ROOT_KEY, ca=True
)
PQ_SIGNER_KEY = mldsa.MLDSA87PrivateKey.generate()
PQ_SIGNER = make_cert(
    "MFP firmware signing ML-DSA 2026",
    PQ_SIGNER_KEY,
    "MFP firmware root ML-DSA",
    PQ_ROOT_KEY,
    ca=False,
)


def make_crl(issuer: str, key: Key, *revoked: x509.Certificate) -> x509.CertificateRevocationList:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name_of(issuer))
        .last_update(NOW - dt.timedelta(days=1))
        .next_update(NOW + dt.timedelta(days=30))
    )
    for cert in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(NOW - dt.timedelta(hours=1))
            .build()
        )
    return b.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA384())
