"""The TPM policy that binds the wrapping key to the measured firmware (K-1, F-4).

The wrapping key carries no usable auth value: the TPM lets it be used only through a
policy session whose digest is one of two branches, each "these PCRs hold these values"
followed by the one command allowed (RSA_Decrypt for the daily unwrap, Duplicate for the
one backup and for re-binding). The branches are computed here, offline, so a firmware
update can bind the key to the PCR value the next boot will produce before it switches
(TPM 2.0 Part 3: PolicyPCR, PolicyCommandCode and PolicyOR digests; SHA-256 bank only).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PCR_COUNT = 24
DIGEST_BYTES = 32
_ALG_SHA256 = 0x000B
_CC_POLICY_PCR = 0x0000017F
_CC_POLICY_COMMAND_CODE = 0x0000016C
_CC_POLICY_OR = 0x00000171
CC_RSA_DECRYPT = 0x00000159
CC_DUPLICATE = 0x0000014B
# The branches of the wrapping key's policy, in PolicyOR order.
ALLOWED_COMMANDS = (CC_RSA_DECRYPT, CC_DUPLICATE)


def _sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def extended(value: bytes, digest: bytes) -> bytes:
    """A SHA-256 PCR's value after TPM2_PCR_Extend(digest)."""
    if len(value) != DIGEST_BYTES or len(digest) != DIGEST_BYTES:
        raise ValueError("PCR values and extended digests are 32 bytes (SHA-256)")
    return _sha256(value, digest)


@dataclass(frozen=True)
class PcrBinding:
    """Which SHA-256 PCRs the key is bound to and the values they must hold, in
    ascending PCR order. No PCRs binds the key to its commands only."""

    pcrs: tuple[int, ...]
    values: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if list(self.pcrs) != sorted(set(self.pcrs)):
            raise ValueError("PCR indices ascending, each once")
        if any(not 0 <= p < PCR_COUNT for p in self.pcrs):
            raise ValueError(f"PCR indices 0-{PCR_COUNT - 1}")
        if len(self.values) != len(self.pcrs) or any(len(v) != DIGEST_BYTES for v in self.values):
            raise ValueError("one 32-byte value per PCR")

    @classmethod
    def of(cls, values: dict[int, bytes]) -> PcrBinding:
        pcrs = tuple(sorted(values))
        return cls(pcrs, tuple(values[p] for p in pcrs))

    def replacing(self, pcr: int, value: bytes) -> PcrBinding:
        """The same binding with one PCR's expected value changed."""
        return PcrBinding.of({**dict(zip(self.pcrs, self.values, strict=True)), pcr: value})

    @property
    def selection(self) -> bytes:
        """TPML_PCR_SELECTION: one SHA-256 bank with these PCRs' bits."""
        if not self.pcrs:
            return (0).to_bytes(4, "big")
        bitmap = bytearray(3)
        for p in self.pcrs:
            bitmap[p // 8] |= 1 << (p % 8)
        return (1).to_bytes(4, "big") + _ALG_SHA256.to_bytes(2, "big") + bytes([3]) + bytes(bitmap)

    @property
    def pcr_digest(self) -> bytes:
        """The digest PolicyPCR compares: SHA-256 over the values in selection order."""
        return _sha256(*self.values)

    def branch(self, command: int) -> bytes:
        """PolicyPCR (when there are PCRs) then PolicyCommandCode(command), from zero."""
        digest = bytes(DIGEST_BYTES)
        if self.pcrs:
            digest = _sha256(
                digest, _CC_POLICY_PCR.to_bytes(4, "big"), self.selection, self.pcr_digest
            )
        return _sha256(
            digest, _CC_POLICY_COMMAND_CODE.to_bytes(4, "big"), command.to_bytes(4, "big")
        )

    @property
    def branches(self) -> tuple[bytes, ...]:
        return tuple(self.branch(cc) for cc in ALLOWED_COMMANDS)

    @property
    def policy(self) -> bytes:
        """The wrapping key's authPolicy: PolicyOR over the branches."""
        return _sha256(bytes(DIGEST_BYTES), _CC_POLICY_OR.to_bytes(4, "big"), *self.branches)

    def describe(self) -> str:
        if not self.pcrs:
            return "no PCRs"
        return ", ".join(
            f"PCR {p} = {v.hex()[:16]}…" for p, v in zip(self.pcrs, self.values, strict=True)
        )
