"""Software-key mode (tpm.backend = "none"): the Tpm port without a TPM.

For boards that have no TPM. The chain has the same shape, but the wrapping and identity
keys are ordinary private keys in the state store, protected only by file permissions.
The daemon says so: the `keys` component is DEGRADED in status and the mode is logged at
every start. Counters live in a file in the state directory (no anti-rollback guarantee
against someone who can write there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.model.pcr_policy import PcrBinding
from mfpsecd.keys.ports import TpmInfo, TpmKey

_OAEP_HASH = hashes.SHA256


def _private(key: TpmKey, what: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    try:
        private = serialization.load_der_private_key(key.private, password=None)
    except ValueError:
        raise MfpsecError(ErrorCode.KEY_INTEGRITY, object=what) from None
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if spki != key.public or not isinstance(
        private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    ):
        raise MfpsecError(ErrorCode.KEY_INTEGRITY, object=what)
    return private


def _pack(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> TpmKey:
    return TpmKey(
        public=private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        private=private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


class SoftwareKeys:
    def __init__(self, state_dir: Path) -> None:
        self._counters = state_dir / "soft-counters.json"
        self._info = TpmInfo("software", False, "none", "-", "keys in the state store")

    @property
    def info(self) -> TpmInfo:
        return self._info

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_wrapping_key(self, binding: PcrBinding) -> TpmKey:
        # No PCRs to bind to: the binding is kept only so the chain treats keys alike.
        key = _pack(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return TpmKey(key.public, key.private, binding)

    async def create_signing_key(self) -> TpmKey:
        return _pack(ec.generate_private_key(ec.SECP256R1()))

    async def public_key_der(self, key: TpmKey) -> bytes:
        return key.public

    async def decrypt(self, key: TpmKey, ciphertext: bytes, label: bytes) -> SecretBytes:
        private = _private(key, "wrapping key")
        assert isinstance(private, rsa.RSAPrivateKey)
        try:
            plain = private.decrypt(
                ciphertext, padding.OAEP(padding.MGF1(_OAEP_HASH()), _OAEP_HASH(), label)
            )
        except ValueError:
            raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="wrapped master key") from None
        return SecretBytes(bytearray(plain))  # `cryptography` returns immutable bytes

    async def sign_digest(self, key: TpmKey, digest: bytes) -> bytes:
        private = _private(key, "identity key")
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    async def export_key(self, key: TpmKey) -> SecretBytes:
        return SecretBytes(bytearray(key.private))

    async def import_key(
        self, public: bytes, sensitive: SecretBytes, binding: PcrBinding
    ) -> TpmKey:
        key = TpmKey(public=public, private=bytes(sensitive.view()), binding=binding)
        _private(key, "backed-up key")
        return key

    async def self_test(self) -> str:
        return ""  # no TPM to test: the keys' algorithms are in the crypto self-tests

    async def forget(self, key: TpmKey) -> None:
        return None

    # ---- counters in a file

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self._counters.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason=f"counters: {exc}") from None
        return {str(k): int(v) for k, v in data.items()}

    def _write(self, counters: dict[str, int]) -> None:
        tmp = self._counters.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(counters, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._counters)

    async def counter_read(self, index: int) -> int | None:
        return self._read().get(f"{index:#010x}")

    async def counter_define(self, index: int) -> None:
        counters = self._read()
        counters.setdefault(f"{index:#010x}", 1)
        self._write(counters)

    async def counter_increment(self, index: int) -> int:
        counters = self._read()
        key = f"{index:#010x}"
        if key not in counters:
            raise MfpsecError(
                ErrorCode.TPM_FAILED, command="NV_Increment", code=f"index {key} not defined"
            )
        counters[key] += 1
        self._write(counters)
        return counters[key]

    async def pcr_extend(self, index: int, digest: bytes) -> bytes | None:
        return None  # nothing to measure into: status says "not measured"

    async def pcr_read(self, index: int) -> bytes | None:
        return None

    async def counter_undefine(self, index: int) -> None:
        counters = self._read()
        counters.pop(f"{index:#010x}", None)
        self._write(counters)
