"""Secret material in memory: mutable buffers that are zeroed, never logged, never echoed.

Python's str and bytes are immutable and may be copied freely by the interpreter, so a
secret is held in a bytearray that this module zeroes with explicit_bzero (native code,
so the compiler cannot drop it) as soon as it is no longer needed.
"""

from __future__ import annotations

import hmac
from types import TracebackType

from mfpsecd import _native


def wipe(buffer: bytearray | memoryview) -> None:
    """Zero a writable buffer in place. Refuses read-only buffers (they cannot be wiped)."""
    _native.secure_zero(buffer)


class SecretBytes:
    """A secret held in a bytearray: zeroed on close, on context exit and when collected.

    repr/str never show the content. Use as a context manager around the shortest span
    that needs the secret.
    """

    __slots__ = ("_buf", "_closed")

    def __init__(self, data: bytearray) -> None:
        # Takes ownership of the caller's bytearray instead of copying: a copy would leave
        # one more plaintext instance behind.
        if not isinstance(data, bytearray):
            raise TypeError("SecretBytes takes a bytearray (bytes cannot be wiped)")
        self._buf = data
        self._closed = False

    @classmethod
    def random(cls, n: int) -> SecretBytes:
        """n bytes from libcrypto's private DRBG (SP 800-90A CTR_DRBG seeded by getrandom),
        written straight into the bytearray: no immutable copy is ever made."""
        buf = bytearray(n)
        _native.random_into(buf)
        return cls(buf)

    @classmethod
    def take_from(cls, buffer: bytearray | memoryview) -> SecretBytes:
        """Copy a secret out of a larger buffer and wipe the source range."""
        secret = cls(bytearray(buffer))
        wipe(buffer)
        return secret

    def view(self) -> memoryview:
        if self._closed:
            raise ValueError("secret already wiped")
        return memoryview(self._buf)

    def equals(self, other: bytes | bytearray | memoryview) -> bool:
        """Constant-time comparison."""
        return hmac.compare_digest(self.view(), other)

    def __len__(self) -> int:
        return len(self._buf)

    def close(self) -> None:
        if not self._closed:
            wipe(self._buf)
            self._closed = True

    def __enter__(self) -> SecretBytes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            wipe(self._buf)

    def __repr__(self) -> str:
        return f"<SecretBytes len={len(self._buf)}{' wiped' if self._closed else ''}>"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("secrets are not picklable")


class ShieldedKey:
    """A long-lived key kept XOR-masked in memory, unmasked only for the span of one use.

    The plain key never sits in process memory between uses, so a memory dump or a scan
    of /proc/PID/mem finds neither it nor anything equal to it; the mask is re-drawn on
    every unmasking so the two halves do not stay fixed either.
    """

    __slots__ = ("_mask", "_masked")

    def __init__(self, key: SecretBytes) -> None:
        n = len(key)
        self._mask = SecretBytes.random(n)
        self._masked = SecretBytes(bytearray(n))
        _native.xor(self._masked.view(), key.view(), self._mask.view())
        key.close()

    def __len__(self) -> int:
        return len(self._masked)

    def unshielded(self) -> SecretBytes:
        """The plain key in a fresh SecretBytes: use it in a `with` block."""
        plain = SecretBytes(bytearray(len(self._masked)))
        _native.xor(plain.view(), self._masked.view(), self._mask.view())
        fresh = SecretBytes.random(len(self._mask))
        _native.xor(self._masked.view(), plain.view(), fresh.view())
        self._mask.close()
        self._mask = fresh
        return plain

    def close(self) -> None:
        self._mask.close()
        self._masked.close()

    def __repr__(self) -> str:
        return f"<ShieldedKey len={len(self._masked)}>"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("keys are not picklable")
