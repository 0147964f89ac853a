"""What the key chain needs from outside: the TPM, the crypto engine that works on
zeroable buffers, and the watcher of USB sticks that can take a key backup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.model.passphrase import Cost
from mfpsecd.keys.model.pcr_policy import PcrBinding

if TYPE_CHECKING:
    # collections.abc.Buffer is 3.12+; annotations only, so the runtime needs no
    # typing_extensions.
    from typing_extensions import Buffer


# ---------------------------------------------------------------- TPM and key crypto


@dataclass(frozen=True)
class TpmKey:
    """A key the TPM holds: its public area and its private area as the TPM wrapped it
    under the storage root key (marshalled TPM2B_PUBLIC / TPM2B_PRIVATE). The private
    blob is useless without the same TPM."""

    public: bytes
    private: bytes
    # The PCR values a bound key's policy requires (core.pcr_policy); None for a key from
    # before binding, which its empty auth value opens.
    binding: PcrBinding | None = None


@dataclass(frozen=True)
class TpmInfo:
    backend: str  # "device", "swtpm" or "software"
    hardware_root: bool  # False in software-key mode: no chip protects the keys
    manufacturer: str
    firmware: str
    where: str  # TCTI or device path


class Tpm(Protocol):
    """The key chain's root of trust. Calls are serialised on one worker thread (a TPM
    context is not thread-safe, and TPM commands take milliseconds to seconds)."""

    @property
    def info(self) -> TpmInfo: ...

    async def open(self) -> None:
        """Connect and make the storage root key ready; raise TPM_FAILED if unusable."""
        ...

    async def create_wrapping_key(self, binding: PcrBinding) -> TpmKey:
        """RSA-2048, OAEP-SHA256 decryption only, usable only through its policy: while
        the binding's PCRs hold its values, RSA_Decrypt, and Duplicate (for the backup
        and for binding it to other values)."""
        ...

    async def create_signing_key(self) -> TpmKey:
        """ECDSA P-256, fixed to this TPM: never exportable."""
        ...

    async def public_key_der(self, key: TpmKey) -> bytes:
        """DER SubjectPublicKeyInfo of a key's public area."""
        ...

    async def decrypt(self, key: TpmKey, ciphertext: bytes, label: bytes) -> SecretBytes:
        """RSA-OAEP-SHA256 decryption inside the TPM. KEY_INTEGRITY if the private blob
        is not this TPM's (another or a cleared TPM, or modified)."""
        ...

    async def sign_digest(self, key: TpmKey, digest: bytes) -> bytes:
        """ECDSA over a SHA-256 digest; DER-encoded signature."""
        ...

    async def export_key(self, key: TpmKey) -> SecretBytes:
        """The key's sensitive area (TPM2B_SENSITIVE) through TPM2_Duplicate, for backup."""
        ...

    async def import_key(
        self, public: bytes, sensitive: SecretBytes, binding: PcrBinding
    ) -> TpmKey:
        """Re-import an exported wrapping key under this TPM's storage root key, with the
        policy of `binding` (the key is the same; only what unlocks it changes)."""
        ...

    async def counter_read(self, index: int) -> int | None:
        """An NV counter's value, or None when the index is not defined."""
        ...

    async def counter_define(self, index: int) -> None: ...

    async def counter_increment(self, index: int) -> int: ...

    async def counter_undefine(self, index: int) -> None: ...

    async def pcr_extend(self, index: int, digest: bytes) -> bytes | None:
        """Extend a SHA-256 PCR with a 32-byte digest; → the PCR's value afterwards, or
        None where there is no TPM to measure into (software-key mode)."""
        ...

    async def pcr_read(self, index: int) -> bytes | None:
        """A SHA-256 PCR's value, or None without a TPM."""
        ...

    async def self_test(self) -> str:
        """TPM2_SelfTest (full) then TPM2_GetTestResult: what passed, or "" where there is
        no TPM to test; SELF_TEST_FAILED when the TPM reports a failure."""
        ...

    async def forget(self, key: TpmKey) -> None:
        """Flush a key from the TPM's memory (its blobs stay wherever the caller keeps them)."""
        ...

    async def close(self) -> None: ...


class KeyCrypto(Protocol):
    """Symmetric sealing and key wrapping on secret buffers that are never copied into
    immutable objects (so they can be zeroed)."""

    def seal(self, key: SecretBytes, nonce: bytes, aad: bytes, plaintext: Buffer) -> bytes:
        """AES-256-GCM: ciphertext || 16-byte tag."""
        ...

    def open(self, key: SecretBytes, nonce: bytes, aad: bytes, sealed: bytes) -> SecretBytes:
        """AES-256-GCM open; KEY_INTEGRITY on any alteration, with nothing decrypted."""
        ...

    def wrap(self, spki_der: bytes, label: bytes, key: SecretBytes) -> bytes:
        """RSA-OAEP-SHA256 under a public key (the TPM's wrapping key)."""
        ...

    def passphrase_key(
        self, passphrase: SecretBytes, salt: bytes, cost: PassphraseCost
    ) -> SecretBytes:
        """A 32-byte key from a passphrase with Argon2id (slow on purpose: run off the loop)."""
        ...


# Argon2id parameters, stored with whatever they protect so they can change later.
PassphraseCost = Cost


# ---------------------------------------------------------------- backup targets (USB)


@dataclass(frozen=True)
class BackupTargetInfo:
    id: str
    device: str
    vendor: str
    model: str
    serial: str
    size_bytes: int
    filesystem: str
    mount_point: str


class BackupTargetWatcher(Protocol):
    """USB mass-storage partitions that can take a key backup, kept current from udev."""

    def current(self) -> list[BackupTargetInfo]: ...

    def watch(self) -> AsyncIterator[list[BackupTargetInfo]]:
        """The current list, then a new list on every change."""
        ...

    async def run(self) -> None:
        """Supervised task: follow udev events (and mounts) until cancelled."""
        ...
