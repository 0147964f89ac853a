"""The identity history's walk (core.identity_history): trust runs only backwards from
the key the TPM holds now; links someone else wrote are never followed."""

from __future__ import annotations

import hashlib

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.base import identity_keys
from mfpsecd.keys.model import identity_history as ih


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _spki(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _link(
    seq: int,
    previous: ec.EllipticCurvePrivateKey,
    new: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey | None = None,
    at: str = "2026-12-01T00:00:00Z",
) -> ih.SignedLink:
    link = ih.new_link(
        seq=seq,
        previous_spki=_spki(previous),
        spki=_spki(new),
        at=at,
        reason="key backup restored onto a replacement TPM",
        by="admin",
    )
    sig = (signer or new).sign(ih.canonical(link), ec.ECDSA(hashes.SHA256()))
    return ih.SignedLink(link, sig.hex())


def test_a_chain_of_restores_proves_every_earlier_key() -> None:
    k0, k1, k2 = _key(), _key(), _key()
    links = [
        _link(1, k0, k1, at="2026-01-01T00:00:00Z"),
        _link(2, k1, k2, at="2026-06-01T00:00:00Z"),
    ]
    known = ih.trusted(_spki(k2), links)
    assert [k.fingerprint for k in known] == [
        identity_keys.fingerprint(_spki(k)) for k in (k2, k1, k0)
    ]
    assert [k.replaced_at for k in known] == ["", "2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z"]
    assert known[0].proof is None and known[2].proof == links[0]
    # The order the rows come in does not matter.
    assert ih.trusted(_spki(k2), links[::-1]) == known


def test_a_link_the_current_key_did_not_sign_is_never_followed() -> None:
    k0, k1, attacker = _key(), _key(), _key()
    genuine = _link(1, k0, k1)
    # Names the current key as its signer, but the attacker signed it.
    forged = _link(1, attacker, k1, signer=attacker)
    for links in ([forged], [forged, genuine], [genuine, forged]):
        known = ih.trusted(_spki(k1), links)
        assert identity_keys.fingerprint(_spki(attacker)) not in [k.fingerprint for k in known]
    # ... and cannot hide the genuine one, whatever the order.
    assert len(ih.trusted(_spki(k1), [forged, genuine])) == 2
    # A link the attacker signed with their own key names their key as the signer: it
    # hangs off nothing trusted.
    assert len(ih.trusted(_spki(k1), [_link(1, _key(), attacker)])) == 1


def test_a_changed_link_or_a_mismatched_fingerprint_ends_the_walk() -> None:
    k0, k1 = _key(), _key()
    signed = _link(1, k0, k1)
    moved = msgspec.structs.replace(signed.link, at="2020-01-01T00:00:00Z")
    assert len(ih.trusted(_spki(k1), [ih.SignedLink(moved, signed.signature)])) == 1
    # The fingerprint of another key beside the real previous key: refused even if signed.
    lying = msgspec.structs.replace(signed.link, previous_fingerprint="00" * 32)
    sig = k1.sign(ih.canonical(lying), ec.ECDSA(hashes.SHA256())).hex()
    assert len(ih.trusted(_spki(k1), [ih.SignedLink(lying, sig)])) == 1
    assert len(ih.trusted(_spki(k1), [ih.SignedLink(signed.link, "zz")])) == 1


def test_a_cycle_ends() -> None:
    k0, k1 = _key(), _key()
    known = ih.trusted(_spki(k1), [_link(1, k0, k1), _link(2, k1, k0)])
    assert len(known) == 2


def test_links_verify_with_the_digest_the_tpm_signs() -> None:
    k = _key()
    link = ih.new_link(
        seq=1, previous_spki=_spki(_key()), spki=_spki(k), at="t", reason="r", by="b"
    )
    message = ih.canonical(link)
    sig = k.sign(message, ec.ECDSA(hashes.SHA256()))
    assert identity_keys.verifies(_spki(k), sig, message)
    assert identity_keys.verifies_digest(_spki(k), sig, hashlib.sha256(message).digest())
    assert not identity_keys.verifies(_spki(_key()), sig, message)
    # The canonical bytes: sorted keys, no spaces.
    assert message.startswith(b'{"at":"t","by":"b","fingerprint":"')


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag, len(content)]) + content


def _pem_on_an_unsupported_curve() -> str:
    import base64

    ec_public_key = bytes.fromhex("06072a8648ce3d0201")
    secp112r1 = bytes.fromhex("06052b81040006")
    point = b"\x04" + bytes(28)
    der = _der(0x30, _der(0x30, ec_public_key + secp112r1) + _der(0x03, b"\x00" + point))
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n"


def test_a_key_on_an_unsupported_curve_is_refused_not_a_crash() -> None:
    """A planted link (or a certificate) carrying a public key on a curve the library
    does not know must end the walk (or fail verification), not raise out of it: that
    would block every certificate of every sanitization."""
    pem = _pem_on_an_unsupported_curve()
    try:
        identity_keys.spki_of(pem)
    except ValueError:
        pass
    else:
        raise AssertionError("a key on secp112r1 was accepted")
    k1 = _key()
    planted = msgspec.structs.replace(_link(1, _key(), k1).link, previous_public_key=pem)
    sig = k1.sign(ih.canonical(planted), ec.ECDSA(hashes.SHA256())).hex()
    assert len(ih.trusted(_spki(k1), [ih.SignedLink(planted, sig)])) == 1
