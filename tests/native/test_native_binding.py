"""The native extension through its Python binding."""

from __future__ import annotations

import array

import pytest

from mfpsecd import _native
from mfpsecd.secret import SecretBytes, wipe


def test_secure_zero_bytearray_and_views() -> None:
    buf = bytearray(b"\xa5" * 100_000)  # above the GIL-release threshold
    _native.secure_zero(buf)
    assert buf == bytearray(100_000)

    buf = bytearray(b"secret-pin-1234!")
    _native.secure_zero(memoryview(buf)[7:14])
    assert buf == b"secret-\0\0\0\0\0\0\0" + b"4!"

    a = array.array("I", [0xFFFFFFFF] * 8)
    _native.secure_zero(a)
    assert list(a) == [0] * 8
    _native.secure_zero(bytearray())  # empty is fine


def test_secure_zero_refuses_what_it_cannot_wipe() -> None:
    with pytest.raises(BufferError):
        _native.secure_zero(memoryview(b"immutable"))
    with pytest.raises(BufferError):
        _native.secure_zero(b"immutable")
    with pytest.raises(BufferError):
        _native.secure_zero(memoryview(bytearray(10))[::2])  # not contiguous
    with pytest.raises(TypeError):
        _native.secure_zero("text")  # type: ignore[arg-type]


def test_crypto_library_and_self_test() -> None:
    assert _native.crypto_version().startswith("OpenSSL 3.")
    _native.crypto_selftest()
    assert issubclass(_native.NativeError, OSError)
    assert _native.ABI_VERSION == 1


def test_secret_bytes_is_wiped_and_never_shown() -> None:
    raw = bytearray(b"correct horse")
    s = SecretBytes(raw)
    assert "correct" not in repr(s) and "correct" not in str(s)
    assert s.equals(b"correct horse") and not s.equals(b"wrong")
    with s:
        assert bytes(s.view()) == b"correct horse"
    assert raw == bytearray(len(raw))  # the caller's buffer itself was wiped
    with pytest.raises(ValueError):
        s.view()
    with pytest.raises(TypeError):
        SecretBytes(b"bytes cannot be wiped")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(SecretBytes(bytearray(b"x")))


def test_take_from_wipes_the_source() -> None:
    msg = bytearray(b'{"pin":"4711"}')
    s = SecretBytes.take_from(memoryview(msg)[8:12])
    assert bytes(s.view()) == b"4711"
    assert msg == b'{"pin":"\0\0\0\0"}'
    s.close()
    wipe(msg)
    assert msg == bytearray(len(msg))
