"""Crypto through the native extension's libcrypto binding: the start-up self-test and the
key-chain primitives (sealing, key wrapping) on buffers that can be zeroed."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from mfpsecd import _native
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.ports import PassphraseCost
from mfpsecd.secret import SecretBytes

if TYPE_CHECKING:
    # collections.abc.Buffer is 3.12+; annotations only, so the runtime needs no
    # typing_extensions.
    from typing_extensions import Buffer

TAG_BYTES = 16
NONCE_BYTES = 12


class NativeCryptoSelfTest:
    def library_version(self) -> str:
        return _native.crypto_version()

    def run(self) -> None:
        try:
            _native.crypto_selftest()
        except _native.NativeError:
            raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test="libcrypto SHA-256 KAT") from None


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

    def passphrase_key(self, passphrase: SecretBytes, salt: bytes, cost: PassphraseCost
                       ) -> SecretBytes:
        # libargon2 through the native extension reads the passphrase where it lies and
        # wipes its own memory; cryptography's Argon2id left a copy of every password in a
        # freed OSSL_PARAM block (found by scanning the daemon's memory after logins).
        out = SecretBytes(bytearray(32))
        try:
            _native.argon2id_into(passphrase.view(), salt, cost.iterations, cost.memory_kib,
                                  cost.lanes, out.view())
        except _native.NativeError as exc:
            out.close()
            raise MfpsecError(ErrorCode.INTERNAL, f"argon2id: {exc}") from None
        return out
