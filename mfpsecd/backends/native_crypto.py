"""Crypto through the native extension's libcrypto binding: the start-up self-test and the
key-chain primitives (sealing, key wrapping) on buffers that can be zeroed."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

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
    """KeyCrypto on the native libcrypto binding (AES-256-GCM, RSA-OAEP) and Argon2id from
    `cryptography`, all on bytearrays that the caller zeroes."""

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
        kdf = Argon2id(salt=salt, length=32, iterations=cost.iterations, lanes=cost.lanes,
                       memory_cost=cost.memory_kib)
        out = SecretBytes(bytearray(32))
        # derive_into reads any buffer: the passphrase is never copied into bytes.
        kdf.derive_into(passphrase.view(), out.view())  # type: ignore[arg-type]
        return out
