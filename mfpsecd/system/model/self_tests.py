"""Power-on known-answer and pair-wise consistency tests of the algorithms the daemon runs
in Python (FPT_TST_EXT.1, SPEC B-2): the digests of the audit chain and of firmware
signatures, TOTP's HMAC, the signatures that vouch for checkpoints, certificates and
firmware. The engines' own algorithms are tested in the native extension.

Each test is a name and a function that raises KnownAnswerMismatch; published vectors
where one exists (FIPS 180-4, RFC 4226, RFC 8032, FIPS 204 through NIST's ACVP), a
sign/verify round trip with a fresh key for ECDSA (its signatures are randomised, so a
fixed answer cannot be compared) and for ML-DSA's hedged signatures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from mfpsecd.auth.model.totp import hotp


class KnownAnswerMismatch(Exception):
    """A test got an answer other than the known one."""


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise KnownAnswerMismatch(what)


def _sha256() -> None:
    _expect(
        hashlib.sha256(b"abc").hexdigest()
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "digest",
    )


def _sha384() -> None:
    digest = hashes.Hash(hashes.SHA384())
    digest.update(b"abc")
    _expect(
        digest.finalize().hex()
        == "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        "8086072ba1e7cc2358baeca134c825a7",
        "digest",
    )


def _hmac_sha1_hotp() -> None:
    # RFC 4226 appendix D: the secret "12345678901234567890", counters 0, 1 and 9.
    seed = memoryview(b"12345678901234567890")
    _expect(
        (hotp(seed, 0), hotp(seed, 1), hotp(seed, 9)) == ("755224", "287082", "520489"),
        "HOTP values",
    )


def _ecdsa(curve: ec.EllipticCurve, digest: hashes.HashAlgorithm) -> Callable[[], None]:
    def test() -> None:
        key = ec.generate_private_key(curve)
        message = b"mfpsecd power-on self-test"
        signature = key.sign(message, ec.ECDSA(digest))
        public = key.public_key()
        public.verify(signature, message, ec.ECDSA(digest))  # raises if inconsistent
        try:
            public.verify(signature, message + b".", ec.ECDSA(digest))
        except InvalidSignature:
            return
        raise KnownAnswerMismatch("a changed message verified")

    return test


def _ed25519() -> None:
    # RFC 8032 section 7.1, TEST 1 (the empty message).
    key = ed25519.Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    signature = key.sign(b"")
    _expect(
        signature.hex() == "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        "signature",
    )
    key.public_key().verify(signature, b"")


# NIST ACVP-Server, ML-DSA-keyGen-FIPS204, test group 3 (ML-DSA-87), tcId 51: the seed,
# and the SHA-256 of the public key the vector gives for it (2,592 bytes).
_MLDSA87_SEED = "5AC4D695186486C11D21F0300DBDA6F38B8D1FA07A254549B64422D44B1AAC42"
_MLDSA87_PUBLIC_SHA256 = "f3181985231f1541993e4a5e676636e76ca97a2d551bff73d832e9ed80217b31"


def _ml_dsa_87() -> None:
    """Key generation against the published vector (it is deterministic from the seed),
    then a signature by that key verified, and refused for a changed message: what the
    firmware's hybrid signatures rely on."""
    key = mldsa.MLDSA87PrivateKey.from_seed_bytes(bytes.fromhex(_MLDSA87_SEED))
    public = key.public_key()
    _expect(
        hashlib.sha256(public.public_bytes_raw()).hexdigest() == _MLDSA87_PUBLIC_SHA256,
        "public key",
    )
    message = b"mfpsecd power-on self-test"
    signature = key.sign(message)
    public.verify(signature, message)
    try:
        public.verify(signature, message + b".")
    except InvalidSignature:
        return
    raise KnownAnswerMismatch("a changed message verified")


TESTS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("sha-256 (audit chain)", _sha256),
    ("sha-384", _sha384),
    ("hmac-sha-1 (totp)", _hmac_sha1_hotp),
    ("ecdsa p-256 pair-wise", _ecdsa(ec.SECP256R1(), hashes.SHA256())),
    ("ecdsa p-384 pair-wise", _ecdsa(ec.SECP384R1(), hashes.SHA384())),
    ("ed25519", _ed25519),
    ("ml-dsa-87 (key generation, pair-wise)", _ml_dsa_87),
)


def run(name: str) -> None:
    """Run one test by name; KnownAnswerMismatch (or the library's own error) if it fails."""
    for known, test in TESTS:
        if known == name:
            try:
                test()
            except InvalidSignature:
                raise KnownAnswerMismatch("a valid signature was refused") from None
            return
    raise KeyError(name)
