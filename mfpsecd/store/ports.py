"""What the job store needs from outside: a cipher for its objects."""

from __future__ import annotations

from typing import Protocol

from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.transfer import Progress


class ObjectCipher(Protocol):
    """Seals and opens job-store objects: segmented AES-256-GCM streams under each object's
    own key, bound to a context (the object id). Blocking: run in a worker thread.
    Failures are MfpsecErrors naming `name` (the object): StoreIntegrity with the first bad
    segment, StoreFull, StoreIoError."""

    def new_key(self) -> SecretBytes: ...

    def progress(self) -> Progress:
        """A handle for one seal or open, to watch and cancel it from another thread."""
        ...

    def seal(
        self,
        key: SecretBytes,
        context: bytes,
        src_fd: int,
        dst_fd: int,
        name: str,
        *,
        progress: Progress | None = None,
    ) -> tuple[int, int]:
        """Everything readable from src_fd (a file or a pipe), sealed to dst_fd from its
        current offset (O_DIRECT where it can). → (plaintext bytes, sealed bytes)."""
        ...

    def verify(self, key: SecretBytes, context: bytes, src_fd: int, name: str) -> int:
        """Authenticate every segment without writing plaintext. → the plaintext size."""
        ...

    def open(
        self,
        key: SecretBytes,
        context: bytes,
        src_fd: int,
        dst_fd: int,
        name: str,
        *,
        progress: Progress | None = None,
    ) -> int:
        """Authenticated plaintext to dst_fd, segment by segment. → its size."""
        ...
