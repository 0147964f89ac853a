"""Crypto self-test through the native extension's libcrypto binding."""

from __future__ import annotations

from mfpsecd import _native
from mfpsecd.errors import ErrorCode, MfpsecError


class NativeCryptoSelfTest:
    def library_version(self) -> str:
        return _native.crypto_version()

    def run(self) -> None:
        try:
            _native.crypto_selftest()
        except _native.NativeError:
            raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test="libcrypto SHA-256 KAT") from None
