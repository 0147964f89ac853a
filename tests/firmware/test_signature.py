"""The vendor signature on a firmware manifest: accepted only from a code-signing
end entity issued by a configured root, with a matching ECDSA P-384 or Ed25519
signature; every other case refused with its reason."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.firmware.model.signature import ClockCheck, verify

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
RAW = b'{"format":"mfpsecd-firmware-manifest/1"}'

Key = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
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
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
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
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA384()
    return b.sign(issuer_key, algorithm)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


ROOT_KEY = ec.generate_private_key(ec.SECP384R1())
ROOT = _cert("MFP firmware root", ROOT_KEY, "MFP firmware root", ROOT_KEY, ca=True)
SIGNER_KEY = ec.generate_private_key(ec.SECP384R1())
SIGNER = _cert("MFP firmware signing 2026", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False)


def _sig(key: Key, data: bytes = RAW) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA384()))


def _refused(
    reason: str,
    *,
    raw: bytes = RAW,
    sig: bytes | None = None,
    signer: x509.Certificate = SIGNER,
    roots: list[x509.Certificate] | None = None,
    clock: ClockCheck = ClockCheck.CHECK,
    pem: bytes | None = None,
) -> None:
    with pytest.raises(MfpsecError) as info:
        verify(
            raw,
            _sig(SIGNER_KEY) if sig is None else sig,
            _pem(signer) if pem is None else pem,
            roots=[ROOT] if roots is None else roots,
            clock=clock,
            now=NOW,
        )
    assert info.value.code is ErrorCode.FIRMWARE_SIGNATURE_INVALID
    assert reason in str(info.value.params["reason"])


def test_a_vendor_signature_is_accepted_p384_and_ed25519() -> None:
    assert (
        verify(RAW, _sig(SIGNER_KEY), _pem(SIGNER), roots=[ROOT], clock=ClockCheck.CHECK, now=NOW)
        == SIGNER
    )
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_signer = _cert("ed signer", ed_key, "MFP firmware root", ROOT_KEY, ca=False)
    assert verify(RAW, _sig(ed_key), _pem(ed_signer), roots=[ROOT], clock=ClockCheck.CHECK, now=NOW)


def test_every_refusal_says_why() -> None:
    _refused("does not match", raw=RAW + b" ")
    _refused("does not match", sig=_sig(SIGNER_KEY, b"another manifest"))
    other_root_key = ec.generate_private_key(ec.SECP384R1())
    other_root = _cert(
        "MFP firmware root", other_root_key, "MFP firmware root", other_root_key, ca=True
    )
    _refused("not issued by a trusted firmware root", roots=[other_root])  # same name
    self_signed = _cert("MFP firmware root", SIGNER_KEY, "MFP firmware root", SIGNER_KEY, ca=False)
    _refused("not issued by a trusted firmware root", signer=self_signed)
    _refused("is a CA", signer=_cert("sub CA", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=True))
    _refused(
        "not for code signing",
        signer=_cert("tls", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False, eku=False),
    )
    _refused(
        "key usage",
        signer=_cert("nosig", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False, usage=False),
    )
    expired = _cert("old", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False, days=(-400, -1))
    _refused("has expired", signer=expired)
    # At boot the clock is not trusted: the same certificate verifies.
    assert verify(
        RAW, _sig(SIGNER_KEY), _pem(expired), roots=[ROOT], clock=ClockCheck.IGNORE, now=NOW
    )
    p256 = ec.generate_private_key(ec.SECP256R1())
    _refused(
        "neither ECDSA P-384 nor Ed25519",
        signer=_cert("p256", p256, "MFP firmware root", ROOT_KEY, ca=False),
        sig=p256.sign(RAW, ec.ECDSA(hashes.SHA256())),
    )
    _refused("not PEM", pem=b"garbage")
    _refused("at most 3 intermediate CAs", pem=_pem(SIGNER) + _pem(ROOT) * 4)
    _refused("no firmware root", roots=[])
    _refused("no signature", sig=b"")


def _crl(issuer: str, key: Key, *revoked: x509.Certificate) -> x509.CertificateRevocationList:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(issuer))
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


def _intermediate_chain() -> tuple[
    ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePrivateKey, x509.Certificate
]:
    """An intermediate CA under ROOT and a signing certificate it issued, with keys."""
    ica_key = ec.generate_private_key(ec.SECP384R1())
    ica = _cert("MFP signing CA 2026", ica_key, "MFP firmware root", ROOT_KEY, ca=True)
    key = ec.generate_private_key(ec.SECP384R1())
    signer = _cert("MFP firmware signing 2026-12", key, "MFP signing CA 2026", ica_key, ca=False)
    return ica_key, ica, key, signer


def test_an_intermediate_ca_between_the_root_and_the_signer() -> None:
    """The bundle carries the signer and its intermediate CA(s); the root alone is
    trusted. Path lengths, the CA flag and (at update) the CAs' dates are enforced."""
    ica_key, ica, key, signer = _intermediate_chain()
    chain = _pem(signer) + _pem(ica)
    assert verify(RAW, _sig(key), chain, roots=[ROOT], clock=ClockCheck.CHECK, now=NOW) == signer
    # Without its intermediate the signer leads nowhere; with an extra, unused
    # certificate it still verifies (trust comes from the roots, not the bundle).
    _refused("not issued by a trusted firmware root", signer=signer, sig=_sig(key))
    assert verify(
        RAW, _sig(key), chain + _pem(SIGNER), roots=[ROOT], clock=ClockCheck.CHECK, now=NOW
    )
    # An "intermediate" that is no CA, a root that allows no CA below it, a CA that
    # expired (refused at update, accepted at boot as an expired signer is).
    fake_key = ec.generate_private_key(ec.SECP384R1())
    not_ca = _cert("MFP signing CA 2026", fake_key, "MFP firmware root", ROOT_KEY, ca=False)
    under = _cert("x", key, "MFP signing CA 2026", fake_key, ca=False)
    _refused("not issued by a trusted firmware root", pem=_pem(under) + _pem(not_ca), sig=_sig(key))
    strict_root = _cert(
        "MFP firmware root", ROOT_KEY, "MFP firmware root", ROOT_KEY, ca=True, path_length=0
    )
    _refused("not issued by a trusted firmware root", pem=chain, sig=_sig(key), roots=[strict_root])
    old_ica = _cert(
        "MFP signing CA 2026", ica_key, "MFP firmware root", ROOT_KEY, ca=True, days=(-400, -1)
    )
    _refused(
        "not issued by a trusted firmware root", pem=_pem(signer) + _pem(old_ica), sig=_sig(key)
    )
    assert verify(
        RAW, _sig(key), _pem(signer) + _pem(old_ica), roots=[ROOT], clock=ClockCheck.IGNORE, now=NOW
    )


def test_a_revoked_signer_or_intermediate_is_refused_at_update_and_at_boot() -> None:
    ica_key, ica, key, signer = _intermediate_chain()
    chain = _pem(signer) + _pem(ica)

    def check(
        crls: list[x509.CertificateRevocationList], pem: bytes = chain, sig: bytes | None = None
    ) -> None:
        for clock in ClockCheck:
            verify(
                RAW,
                _sig(key) if sig is None else sig,
                pem,
                roots=[ROOT],
                clock=clock,
                now=NOW,
                crls=crls,
            )

    check([_crl("MFP signing CA 2026", ica_key, SIGNER)])  # another serial: no effect
    for crls, what in (
        ([_crl("MFP signing CA 2026", ica_key, signer)], "2026-12"),
        ([_crl("MFP firmware root", ROOT_KEY, ica)], "CA 2026"),
    ):
        for clock in ClockCheck:
            with pytest.raises(MfpsecError) as info:
                verify(RAW, _sig(key), chain, roots=[ROOT], clock=clock, now=NOW, crls=crls)
            assert "is revoked by" in str(info.value.params["reason"])
            assert what in str(info.value.params["reason"])
    # The root's own CRL retires a signer it issued directly.
    with pytest.raises(MfpsecError):
        verify(
            RAW,
            _sig(SIGNER_KEY),
            _pem(SIGNER),
            roots=[ROOT],
            clock=ClockCheck.CHECK,
            now=NOW,
            crls=[_crl("MFP firmware root", ROOT_KEY, SIGNER)],
        )
    # A list in the issuer's name but signed by another key revokes nothing.
    forger = ec.generate_private_key(ec.SECP384R1())
    check([_crl("MFP signing CA 2026", forger, signer)])
