"""Argon2id through the binding (libargon2) gives what an independent implementation
(OpenSSL's, in the cryptography package) gives: stored verifiers stay valid."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from mfpsecd import _native


@pytest.mark.parametrize(
    ("pw_len", "t", "m", "lanes"),
    [(0, 1, 64, 1), (1, 2, 256, 1), (31, 2, 19 * 1024, 1), (64, 3, 1024, 4), (256, 1, 128, 2)],
)
def test_the_same_verifier_as_openssl(pw_len: int, t: int, m: int, lanes: int) -> None:
    password, salt = bytearray(os.urandom(pw_len)), os.urandom(16)
    original = bytes(password)
    out = bytearray(32)
    _native.argon2id_into(password, salt, t, m, lanes, out)
    reference = Argon2id(salt=salt, length=32, iterations=t, lanes=lanes, memory_cost=m).derive(
        bytes(password)
    )
    assert bytes(out) == reference
    assert password == original  # read in place, left to the caller to wipe


def test_refusals_raise_native_error() -> None:
    out = bytearray(32)
    with pytest.raises(_native.NativeError):
        _native.argon2id_into(bytearray(b"pw"), b"short", 1, 64, 1, out)  # salt < 8
    with pytest.raises(_native.NativeError):
        _native.argon2id_into(bytearray(b"pw"), b"saltsalt", 1, 8, 2, out)  # m < 8 lanes
    for t, m, lanes in ((2**32 + 1, 64, 1), (1, 2**32 + 64, 1), (-1, 64, 1), (1, 64, 0)):
        with pytest.raises((ValueError, OverflowError)):  # never wrapped to a small cost
            _native.argon2id_into(bytearray(b"pw"), b"saltsalt", t, m, lanes, out)
    with pytest.raises(TypeError):
        _native.argon2id_into(bytearray(b"pw"), b"saltsalt", 1, 64, 1, b"immutable out")
