"""The native extension through its Python binding."""

from __future__ import annotations

import array
import errno
import os

import pytest

from mfpsecd import _native
from mfpsecd.base.secret import SecretBytes, wipe


@pytest.mark.sfr("FCS_CKM.4")
@pytest.mark.spec("E-3", "K-4")
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
    names = _native.crypto_selftests()
    assert len(set(names)) == len(names) >= 7
    for i in range(len(names)):
        _native.crypto_selftest(i)
    for bad in (len(names), -1):
        with pytest.raises(_native.NativeError) as info:
            _native.crypto_selftest(bad)
        assert info.value.errno == errno.EINVAL
    assert issubclass(_native.NativeError, OSError)
    assert _native.ABI_VERSION == 9


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


def test_aead_binding_round_trip_and_refusals() -> None:
    import errno

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, nonce, aad = bytearray(os.urandom(32)), os.urandom(12), b"name\0kind"
    plain = b"s3cret value"
    sealed = bytearray(len(plain) + 16)
    _native.aes256gcm_seal(key, nonce, aad, plain, sealed)
    # An independent implementation agrees.
    assert AESGCM(bytes(key)).decrypt(nonce, bytes(sealed), aad) == plain
    out = bytearray(len(plain))
    _native.aes256gcm_open(key, nonce, aad, sealed, out)
    assert out == plain
    sealed[3] ^= 1
    out[:] = b"x" * len(out)
    with pytest.raises(_native.NativeError) as exc:
        _native.aes256gcm_open(key, nonce, aad, sealed, out)
    assert exc.value.errno == errno.EBADMSG
    assert out == bytes(len(out))  # nothing unauthenticated is handed out
    with pytest.raises(ValueError):
        _native.aes256gcm_seal(key[:16], nonce, aad, plain, bytearray(len(plain) + 16))
    with pytest.raises(ValueError):
        _native.aes256gcm_seal(key, nonce, aad, plain, bytearray(3))
    with pytest.raises(BufferError):
        _native.aes256gcm_open(key, nonce, aad, bytes(sealed), b"\0" * len(plain))


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("K-1", "K-2")
def test_xor_random_and_rsa_oaep_binding() -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    a, b = bytearray(b"\x0f" * 8), bytearray(b"\xf0" * 8)
    _native.xor(a, a, b)
    assert a == b"\xff" * 8
    with pytest.raises(_native.NativeError):
        _native.xor(a, a, b"\0")
    r1, r2 = bytearray(32), bytearray(32)
    _native.random_into(r1)
    _native.random_into(r2)
    assert r1 != r2 and r1 != bytes(32)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ct = _native.rsa_oaep_sha256_encrypt(spki, b"label\0", r1)
    assert key.decrypt(
        ct, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), b"label\0")
    ) == bytes(r1)
    with pytest.raises(_native.NativeError):
        _native.rsa_oaep_sha256_encrypt(b"not a key", b"", r1)
