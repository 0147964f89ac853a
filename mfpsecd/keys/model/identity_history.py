"""The device identity's history: which identity keys this device has had, proven from
the one in its TPM now (SPEC W-4; the evidence of every earlier certificate).

A restore onto a replacement TPM gives the device a new identity key; the old one died
with the old TPM. The new key then signs a link naming the old one. Trust runs only
backwards from the key the TPM holds now: each link must be signed by a key already
trusted, so someone who controls the disk can add no key of theirs, and nothing here
trusts a key because a document carries it.

A link is canonical JSON (sorted keys, no spaces) signed with ECDSA P-256 over SHA-256,
DER-encoded: `openssl dgst -sha256 -verify new.pem -signature link.sig link.json`
checks one without this software.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from mfpsecd.base.identity_keys import fingerprint, pem, spki_of, verifies

LINK_FORMAT = "mfpsecd-identity-link/1"


class IdentityLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    format: str
    seq: int  # 1 for the device's first change of identity
    previous_fingerprint: str  # SHA-256 of the previous key's SubjectPublicKeyInfo (DER)
    previous_public_key: str  # PEM
    fingerprint: str  # the new identity key, which signs this link
    public_key: str  # PEM
    at: str  # RFC 3339 UTC
    reason: str  # e.g. "key backup restored onto a replacement TPM"
    by: str  # who did it (user name, or "system")


class SignedLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    link: IdentityLink
    signature: str  # hex DER ECDSA by the NEW key over SHA-256(canonical(link))


@dataclass(frozen=True)
class KnownIdentity:
    fingerprint: str
    spki_der: bytes
    replaced_at: str  # "" for the identity the TPM holds now
    proof: SignedLink | None  # the link from its successor (None for the current one)


_ENC = msgspec.json.Encoder(order="sorted")


def canonical(link: IdentityLink) -> bytes:
    return _ENC.encode(link)


def encode(signed: SignedLink) -> bytes:
    return _ENC.encode(signed)


def decode(data: bytes | str) -> SignedLink:
    """Strict parse; raises msgspec.ValidationError/DecodeError."""
    return msgspec.json.decode(data, type=SignedLink)


def _names(pem_text: str, spki_der: bytes) -> bool:
    try:
        return spki_of(pem_text) == spki_der
    except ValueError:
        return False


def new_link(
    *, seq: int, previous_spki: bytes, spki: bytes, at: str, reason: str, by: str
) -> IdentityLink:
    return IdentityLink(
        format=LINK_FORMAT,
        seq=seq,
        previous_fingerprint=fingerprint(previous_spki),
        previous_public_key=pem(previous_spki),
        fingerprint=fingerprint(spki),
        public_key=pem(spki),
        at=at,
        reason=reason,
        by=by,
    )


def trusted(current_spki: bytes, links: list[SignedLink]) -> list[KnownIdentity]:
    """The identities proven from the current one, newest first. Of the links that name
    the last trusted key as their signer, the one whose signature verifies under it (and
    whose keys match their fingerprints) adds its previous key; none: the walk ends. A
    link someone added without that key's signature is never followed, and cannot hide
    the genuine one."""
    known = [KnownIdentity(fingerprint(current_spki), current_spki, "", None)]
    by_signer: dict[str, list[SignedLink]] = {}
    for signed in links:
        by_signer.setdefault(signed.link.fingerprint, []).append(signed)
    seen = {known[0].fingerprint}
    while True:
        signer = known[-1]
        step = next(
            (
                s
                for s in by_signer.get(signer.fingerprint, ())
                if (p := _proven_previous(s, signer.spki_der)) is not None
                and fingerprint(p) not in seen
            ),
            None,
        )
        if step is None:
            return known
        previous = spki_of(step.link.previous_public_key)
        seen.add(step.link.previous_fingerprint)
        known.append(KnownIdentity(step.link.previous_fingerprint, previous, step.link.at, step))


def _proven_previous(signed: SignedLink, signer_spki: bytes) -> bytes | None:
    """The previous key a link names, if the link is well formed and signed by signer."""
    link = signed.link
    try:
        previous = spki_of(link.previous_public_key)
        signature = bytes.fromhex(signed.signature)
    except ValueError:
        return None
    if (
        link.format != LINK_FORMAT
        or fingerprint(previous) != link.previous_fingerprint
        or not _names(link.public_key, signer_spki)
        or not verifies(signer_spki, signature, canonical(link))
    ):
        return None
    return previous
