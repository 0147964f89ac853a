"""Crypto through the native extension's libcrypto binding: the start-up self-test and the
key-chain primitives (sealing, key wrapping) on buffers that can be zeroed."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mfpsecd import _native
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.ports import PassphraseCost

if TYPE_CHECKING:
    # collections.abc.Buffer is 3.12+; annotations only, so the runtime needs no
    # typing_extensions.
    from typing_extensions import Buffer

TAG_BYTES = 16
NONCE_BYTES = 12


# A published test key, not a secret: the RSA-OAEP pair-wise test encrypts with the
# engine's key wrapping and decrypts with the library the software-key mode decrypts with.
_OAEP_TEST_KEY = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC09sFlrHsaBjyi
bOdHB9ibNVYlWAgZPKerjcYaru1dsqmR9PHXgUz2EGXHxVR/D2VSFgi73vhZ89PG
BsxrzxQgRoNVkoOqBwbQXLHeWk0M3Nhgk9TfEZtqFmPetYGXIVtj+BNB4hDMQNP4
JuhNglUdwUEo4Y9ciIT44OJbA0yUa/x7Ut6W5aT/fhNa/Jdssom1PVUG4R8Ua0Fv
TmK+DYq5puuyOM0K1mVQL7RA0NjdjdaLd4fPkaLTqGuqGc05I4gyc+FIXD3xg3X3
fHFKP/VmoVwEi6dm5CATWfBfBjyEzr6uK2lSx8ilkOLelEchny7BrMV1TT/qIP04
sfwkplU5AgMBAAECggEAHIVbe8PQbwyWl97kIJzK9cNVPXN/a0LVBkPE+kWhoYfc
E+XwC9AUKh/xeqfOJmxtwp84ZyvAJqU4Nlix9Tfg6ylR37XEzJJo74P8gJfo1uMj
syz5euLShMjcmqgusXwPZFUf691OWnLJNa4kJLsq4RKpS2EpcCMQGg2Pf1qowidy
+KNCkx2A9oNieXKMroPA2threSRmDqSWx2i1ITVwlbPlsLV0IzwyJM+p/zaDscDA
+RDbCGI0V+f2fxr//e5lra+S7zUEBkflQr0IDzP7EHyhwFo/jW3avBBg44VQlp2X
tV4YvrVUNxkFjw2w+EnfoHBLLAtoQikSPlrrPa4mRQKBgQDcqWnzSppsuclJl8Mg
FKcZLjeIgHQ6gT9QltDdkzc69xSoeD1K+Ftig8aEwhFzveJR60ZGETlKVYm7x7HL
sDYMn6uVSd1r9DdyMpG+7/JuwYTIPPqj1+FeQdooF/0C4xtO1QekLwpF7ZJT/DBc
qs2zT+R0oERZTO/1r4wiIzgOewKBgQDR8dOfuHOqlBEDCz91+quc+eR0rLIpLXbn
WmyBLdjFNe6AR9u2mTOF1ZxYferFNPk/1AVvamTRr8F8rYDv1yNfw1RDy7zgCPKa
cZvJnqII5rL9MFS3IYb0O3NRHZ2undrWHELfN8OvEpN/Sv/1hMBIpzH7aoVi5Qir
jLAigqw22wKBgEw+yZpEO+m3pGKmasjJ+hcMTin/YKnagPsisZbuSFY6i8vOiDdA
a6s1p0G2IPuiL/JoXkbVqrsRpV7aGIguIe7ouQwDktu7bfEqogucs2MrwOrDj0NP
09KS5IOYDleSC5yIpXRIwL764OXeLQPIDP2ZbHIT8qn8mKmG99/P1Y3DAoGBAJkV
VzUQfy6zVpA8pGJ3jKkiwcWdoy9JWnkpwxKShoyOXcEmJHxJy3rcHmucLRLtJI25
INlz393R5SjvLqQz4DRUrl3c8nT9sUCSdIEYbZhF99+MXUlHZisyKkzMZozLx6T1
6IDxHXvL9McNvgOdb8PKPjTQIEDTNnY4WLphRAefAoGAfL2VfugKOIhWCUds5tBW
J0oF4eWx5lzxYzs0tUglBWU6sekzpwg45+WpdR3bh8vQjTFAgxsWe8y8v+nqiY5M
byQgWR119qqS8WpRHkByt38ZtecUKyQ+osY+ymJbt9aMdGYXHUneN987QwBS1m4n
FtXpVy+ODQ69gAgtJv9K6Uw=
-----END PRIVATE KEY-----
"""
_OAEP_TEST = "rsa-oaep-sha256 pair-wise"


class NativeCryptoSelfTest:
    """The engines' known-answer tests (in the extension) and an RSA-OAEP round trip."""

    def library_version(self) -> str:
        return _native.crypto_version()

    def names(self) -> tuple[str, ...]:
        return (*_native.crypto_selftests(), _OAEP_TEST)

    def run(self, name: str) -> None:
        try:
            if name == _OAEP_TEST:
                _oaep_round_trip()
            else:
                _native.crypto_selftest(_native.crypto_selftests().index(name))
        except (_native.NativeError, ValueError):
            raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test=name) from None


def _oaep_round_trip() -> None:
    private = serialization.load_pem_private_key(_OAEP_TEST_KEY, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    message = bytes(range(32))
    label = b"mfpsecd self-test"
    wrapped = _native.rsa_oaep_sha256_encrypt(spki, label, message)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), label)
    if private.decrypt(wrapped, oaep) != message:
        raise ValueError("round trip")


class NativeKeyCrypto:
    """KeyCrypto on the native binding: AES-256-GCM and RSA-OAEP on libcrypto, Argon2id on
    libargon2, all on bytearrays that the caller zeroes."""

    def seal(self, key: SecretBytes, nonce: bytes, aad: bytes, plaintext: Buffer) -> bytes:
        out = bytearray(len(memoryview(plaintext)) + TAG_BYTES)
        _native.aes256gcm_seal(key.view(), nonce, aad, plaintext, out)
        return bytes(out)

    def open(self, key: SecretBytes, nonce: bytes, aad: bytes, sealed: bytes) -> SecretBytes:
        if len(sealed) < TAG_BYTES or len(nonce) != NONCE_BYTES:
            raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="sealed record")
        out = SecretBytes(bytearray(len(sealed) - TAG_BYTES))
        try:
            _native.aes256gcm_open(key.view(), nonce, aad, sealed, out.view())
        except _native.NativeError as exc:
            out.close()
            if exc.errno == errno.EBADMSG:
                raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="sealed record") from None
            raise
        return out

    def wrap(self, spki_der: bytes, label: bytes, key: SecretBytes) -> bytes:
        return _native.rsa_oaep_sha256_encrypt(spki_der, label, key.view())

    def passphrase_key(
        self, passphrase: SecretBytes, salt: bytes, cost: PassphraseCost
    ) -> SecretBytes:
        # libargon2 through the native extension reads the passphrase where it lies and
        # wipes its own memory; cryptography's Argon2id left a copy of every password in a
        # freed OSSL_PARAM block (found by scanning the daemon's memory after logins).
        out = SecretBytes(bytearray(32))
        try:
            _native.argon2id_into(
                passphrase.view(), salt, cost.iterations, cost.memory_kib, cost.lanes, out.view()
            )
        except _native.NativeError as exc:
            out.close()
            raise MfpsecError(ErrorCode.INTERNAL, f"argon2id: {exc}") from None
        return out
