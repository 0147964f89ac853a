"""Rules for passphrases that protect key material (the key backup)."""

from __future__ import annotations

from dataclasses import dataclass

from mfpsecd.base.errors import ErrorCode, MfpsecError

MAX_PASSPHRASE = 256


@dataclass(frozen=True)
class Cost:
    """Argon2id parameters (RFC 9106), kept with each verifier so they can change later."""

    memory_kib: int
    iterations: int
    lanes: int


def check_backup_passphrase(passphrase: memoryview, min_length: int) -> None:
    """Printable ASCII, at least min_length long, not one character repeated.

    Works on the buffer in place: no str or bytes copy of the passphrase is made."""
    n = len(passphrase)
    weak = n < min_length or n > MAX_PASSPHRASE
    first = passphrase[0] if n else 0
    same = True
    for b in passphrase:
        if b < 0x20 or b > 0x7E:
            weak = True
        if b != first:
            same = False
    if weak or same:
        raise MfpsecError(ErrorCode.PASSPHRASE_TOO_WEAK, min_length=min_length)
