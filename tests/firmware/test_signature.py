"""The vendor signature on a firmware manifest: accepted only from a code-signing
end entity issued by a configured root, with a matching ECDSA P-384 or Ed25519
signature; every other case refused with its reason."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.firmware.model.signature import ClockCheck, verify
from tests.support.firmware_pki import (
    NOW,
    ROOT,
    ROOT_KEY,
    SIGNER,
    SIGNER_KEY,
    Key,
    make_cert,
    make_crl,
    pem_of,
)

RAW = b'{"format":"mfpsecd-firmware-manifest/1"}'


def _sig(key: Key, data: bytes = RAW) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA384()))
    return key.sign(data)


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
            pem_of(signer) if pem is None else pem,
            roots=[ROOT] if roots is None else roots,
            clock=clock,
            now=NOW,
        )
    assert info.value.code is ErrorCode.FIRMWARE_SIGNATURE_INVALID
    assert reason in str(info.value.params["reason"])


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("F-1", "F-5")
def test_a_vendor_signature_is_accepted_p384_and_ed25519() -> None:
    assert (
        verify(RAW, _sig(SIGNER_KEY), pem_of(SIGNER), roots=[ROOT], clock=ClockCheck.CHECK, now=NOW)
        == SIGNER
    )
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_signer = make_cert("ed signer", ed_key, "MFP firmware root", ROOT_KEY, ca=False)
    assert verify(
        RAW, _sig(ed_key), pem_of(ed_signer), roots=[ROOT], clock=ClockCheck.CHECK, now=NOW
    )


def test_every_refusal_says_why() -> None:
    _refused("does not match", raw=RAW + b" ")
    _refused("does not match", sig=_sig(SIGNER_KEY, b"another manifest"))
    other_root_key = ec.generate_private_key(ec.SECP384R1())
    other_root = make_cert(
        "MFP firmware root", other_root_key, "MFP firmware root", other_root_key, ca=True
    )
    _refused("not issued by a trusted firmware root", roots=[other_root])  # same name
    self_signed = make_cert(
        "MFP firmware root", SIGNER_KEY, "MFP firmware root", SIGNER_KEY, ca=False
    )
    _refused("not issued by a trusted firmware root", signer=self_signed)
    _refused(
        "is a CA", signer=make_cert("sub CA", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=True)
    )
    _refused(
        "not for code signing",
        signer=make_cert("tls", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False, eku=False),
    )
    _refused(
        "key usage",
        signer=make_cert("nosig", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False, usage=False),
    )
    expired = make_cert("old", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False, days=(-400, -1))
    _refused("has expired", signer=expired)
    # At boot the clock is not trusted: the same certificate verifies.
    assert verify(
        RAW, _sig(SIGNER_KEY), pem_of(expired), roots=[ROOT], clock=ClockCheck.IGNORE, now=NOW
    )
    p256 = ec.generate_private_key(ec.SECP256R1())
    _refused(
        "neither ECDSA P-384 nor Ed25519",
        signer=make_cert("p256", p256, "MFP firmware root", ROOT_KEY, ca=False),
        sig=p256.sign(RAW, ec.ECDSA(hashes.SHA256())),
    )
    _refused("not PEM", pem=b"garbage")
    _refused("at most 3 intermediate CAs", pem=pem_of(SIGNER) + pem_of(ROOT) * 4)
    _refused("no firmware root", roots=[])
    _refused("no signature", sig=b"")


def _intermediate_chain() -> tuple[
    ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePrivateKey, x509.Certificate
]:
    """An intermediate CA under ROOT and a signing certificate it issued, with keys."""
    ica_key = ec.generate_private_key(ec.SECP384R1())
    ica = make_cert("MFP signing CA 2026", ica_key, "MFP firmware root", ROOT_KEY, ca=True)
    key = ec.generate_private_key(ec.SECP384R1())
    signer = make_cert(
        "MFP firmware signing 2026-12", key, "MFP signing CA 2026", ica_key, ca=False
    )
    return ica_key, ica, key, signer


def test_an_intermediate_ca_between_the_root_and_the_signer() -> None:
    """The bundle carries the signer and its intermediate CA(s); the root alone is
    trusted. Path lengths, the CA flag and (at update) the CAs' dates are enforced."""
    ica_key, ica, key, signer = _intermediate_chain()
    chain = pem_of(signer) + pem_of(ica)
    assert verify(RAW, _sig(key), chain, roots=[ROOT], clock=ClockCheck.CHECK, now=NOW) == signer
    # Without its intermediate the signer leads nowhere; with an extra, unused
    # certificate it still verifies (trust comes from the roots, not the bundle).
    _refused("not issued by a trusted firmware root", signer=signer, sig=_sig(key))
    assert verify(
        RAW, _sig(key), chain + pem_of(SIGNER), roots=[ROOT], clock=ClockCheck.CHECK, now=NOW
    )
    # An "intermediate" that is no CA, a root that allows no CA below it, a CA that
    # expired (refused at update, accepted at boot as an expired signer is).
    fake_key = ec.generate_private_key(ec.SECP384R1())
    not_ca = make_cert("MFP signing CA 2026", fake_key, "MFP firmware root", ROOT_KEY, ca=False)
    under = make_cert("x", key, "MFP signing CA 2026", fake_key, ca=False)
    _refused(
        "not issued by a trusted firmware root", pem=pem_of(under) + pem_of(not_ca), sig=_sig(key)
    )
    strict_root = make_cert(
        "MFP firmware root", ROOT_KEY, "MFP firmware root", ROOT_KEY, ca=True, path_length=0
    )
    _refused("not issued by a trusted firmware root", pem=chain, sig=_sig(key), roots=[strict_root])
    old_ica = make_cert(
        "MFP signing CA 2026", ica_key, "MFP firmware root", ROOT_KEY, ca=True, days=(-400, -1)
    )
    _refused(
        "not issued by a trusted firmware root", pem=pem_of(signer) + pem_of(old_ica), sig=_sig(key)
    )
    assert verify(
        RAW,
        _sig(key),
        pem_of(signer) + pem_of(old_ica),
        roots=[ROOT],
        clock=ClockCheck.IGNORE,
        now=NOW,
    )


def test_a_revoked_signer_or_intermediate_is_refused_at_update_and_at_boot() -> None:
    ica_key, ica, key, signer = _intermediate_chain()
    chain = pem_of(signer) + pem_of(ica)

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

    check([make_crl("MFP signing CA 2026", ica_key, SIGNER)])  # another serial: no effect
    for crls, what in (
        ([make_crl("MFP signing CA 2026", ica_key, signer)], "2026-12"),
        ([make_crl("MFP firmware root", ROOT_KEY, ica)], "CA 2026"),
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
            pem_of(SIGNER),
            roots=[ROOT],
            clock=ClockCheck.CHECK,
            now=NOW,
            crls=[make_crl("MFP firmware root", ROOT_KEY, SIGNER)],
        )
    # A list in the issuer's name but signed by another key revokes nothing.
    forger = ec.generate_private_key(ec.SECP384R1())
    check([make_crl("MFP signing CA 2026", forger, signer)])
