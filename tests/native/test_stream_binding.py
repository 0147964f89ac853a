"""The AES engines through the binding: NIST/IEEE known answers for GCM and XTS, the
stream layout checked against an independent AES-GCM (the `cryptography` wheel's
OpenSSL), every tampering case, and round trips of random sizes in memory and through
file descriptors and pipes."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from mfpsecd import _native

SHIFT = 12
SEG = 1 << SHIFT
FULL = SEG + 16
HDR = _native.STREAM_HEADER_BYTES
CONTEXT = b"job-0042"

# NIST CAVP gcmEncryptExtIV256.rsp (Count 0), and the GCM specification's test case 16.
GCM_VECTORS = [
    (
        "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4",
        "516c33929df5a3284ff463d7",
        "",
        "",
        "",
        "bdc1ac884d332457a1d2664f168c76f0",
    ),
    (
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
]

# IEEE 1619-2007 vector 10 (data unit 0xff, 512 bytes of 00..ff twice).
IEEE_KEY = bytes.fromhex(
    "2718281828459045235360287471352662497757247093699959574966967627"
    "3141592653589793238462643383279502884197169399375105820974944592"
)
IEEE_CT_HEAD = bytes.fromhex("1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b")
IEEE_CT_TAIL = bytes.fromhex("773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151")
# NIST CAVP XTSGenAES256.rsp COUNT=1 (128-bit hex tweak).
NIST_XTS = (
    "1ea661c58d943a0e4801e42f4b0947149e7f9f8e3e68d0c7505210bd311a0e7c"
    "d6e13ffdf2418d8d1911c004cda58da3d619b7e2b9141e58318eea392cf41b08",
    "adf8d92627464ad2f0428e84a9f87564",
    "2eedea52cd8215e1acc647e810bbc3642e87287f8d2e57e36c0a24fbc12a202e",
    "cbaad0e2f6cea3f50b37f934d46a9b130b9d54f07e34f36af793e86f73c6d7db",
)


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("E-1", "E-4")
@pytest.mark.parametrize("vector", GCM_VECTORS)
def test_gcm_known_answers(vector: tuple[str, ...]) -> None:
    key, nonce, aad, pt, ct, tag = (bytes.fromhex(v) for v in vector)
    out = bytearray(len(pt) + 16)
    _native.aes256gcm_seal(key, nonce, aad, pt, out)
    assert bytes(out) == ct + tag
    back = bytearray(len(pt))
    _native.aes256gcm_open(key, nonce, aad, ct + tag, back)
    assert bytes(back) == pt


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("E-1", "E-4")
def test_xts_known_answers() -> None:
    pt = bytes(range(256)) * 2
    ct = bytearray(512)
    _native.xts_sectors(IEEE_KEY, 0xFF, 512, pt, ct, True)
    assert ct[:32] == IEEE_CT_HEAD and ct[-32:] == IEEE_CT_TAIL
    back = bytearray(512)
    _native.xts_sectors(IEEE_KEY, 0xFF, 512, ct, back, False)
    assert back == pt
    key, tweak, npt, nct = (bytes.fromhex(v) for v in NIST_XTS)
    out = bytearray(32)
    _native.xts_unit(key, tweak, npt, out, True)
    assert out == nct
    # Whole sectors agree with an independent XTS (the wheel's OpenSSL), tweak = plain64.
    data = os.urandom(8 * 4096)
    mine = bytearray(len(data))
    _native.xts_sectors(key, 1 << 40, 4096, data, mine, True)
    for i in range(8):
        tw = ((1 << 40) + i).to_bytes(16, "little")
        enc = Cipher(algorithms.AES(key), modes.XTS(tw)).encryptor()
        assert mine[i * 4096 : (i + 1) * 4096] == enc.update(data[i * 4096 : (i + 1) * 4096])
    with pytest.raises(_native.NativeError) as info:
        _native.xts_sectors(key[:32] * 2, 0, 512, pt, ct, True)
    assert info.value.errno == errno.EINVAL


def _seal(key: bytes, data: bytes, threads: int = 2, context: bytes = CONTEXT) -> bytearray:
    out = bytearray(_native.stream_sealed_size(len(data), SHIFT))
    assert _native.stream_seal(key, context, SHIFT, threads, data, out, None) == len(out)
    return out


def _open(key: bytes, sealed: bytes | bytearray, context: bytes = CONTEXT) -> bytes:
    size = _native.stream_plain_size(sealed, len(sealed)) if len(sealed) >= HDR else 0
    out = bytearray(size)
    n = _native.stream_open(key, context, 2, sealed, out, None)
    return bytes(out[:n])


def _refused(key: bytes, sealed: bytes | bytearray, context: bytes = CONTEXT) -> int:
    """Open a stream that must fail: EBADMSG, no plaintext left in the output buffer."""
    out = bytearray(b"\xee" * len(sealed))
    state = _native.StreamState()
    with pytest.raises(_native.NativeError) as info:
        _native.stream_open(key, context, 2, sealed, out, state)
    assert info.value.errno == errno.EBADMSG
    assert set(out) <= {0, 0xEE}
    return state.bad_segment


def test_stream_layout_is_gcm_per_segment() -> None:
    """Checked with an independent AES-GCM: nonce = prefix || be32(i), associated data
    = header || final flag || context."""
    key = os.urandom(32)
    data = os.urandom(3 * SEG + 77)
    sealed = _seal(key, data)
    header = bytes(sealed[:HDR])
    assert header[:6] == b"MFPE\x01" + bytes([SHIFT])
    gcm = AESGCM(key)
    for i in range(4):
        last = i == 3
        body = sealed[HDR + i * FULL : HDR + (i + 1) * FULL]
        nonce = header[8:16] + i.to_bytes(4, "big")
        aad = header + bytes([last]) + CONTEXT
        assert gcm.decrypt(nonce, bytes(body), aad) == data[i * SEG : (i + 1) * SEG]


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("E-1", "E-4")
def test_every_tampering_is_an_integrity_error_and_never_plaintext() -> None:
    key, other = os.urandom(32), os.urandom(32)
    data = os.urandom(5 * SEG + 123)
    sealed = bytes(_seal(key, data))
    n_seg = 6
    for i in range(n_seg):  # a bit flip in each segment's ciphertext and in its tag
        for at in (0, 17, -1):
            end = min(HDR + (i + 1) * FULL, len(sealed))
            pos = HDR + i * FULL + at if at >= 0 else end - 1
            t = bytearray(sealed)
            t[pos] ^= 0x20
            assert _refused(key, t) == i
    for i in range(n_seg):  # truncated at every segment boundary
        _refused(key, sealed[: HDR + i * FULL])
    _refused(key, sealed[:-1])
    for i, j in ((0, 1), (2, 4)):  # two segments reordered
        t = bytearray(sealed)
        a, b = (
            slice(HDR + i * FULL, HDR + (i + 1) * FULL),
            slice(HDR + j * FULL, HDR + (j + 1) * FULL),
        )
        t[a], t[b] = sealed[b], sealed[a]
        assert _refused(key, t) == i
    # A segment of another object: under its own key, and even under the same key.
    for k2 in (other, key):
        second = _seal(k2, data)
        t = bytearray(sealed)
        t[HDR + 2 * FULL : HDR + 3 * FULL] = second[HDR + 2 * FULL : HDR + 3 * FULL]
        assert _refused(key, t) == 2
    for extra in (b"\x00", bytes(16), sealed[-139:], _seal(key, b"x")[HDR:]):  # appended
        _refused(key, sealed + extra)
    _refused(other, sealed)  # wrong key
    _refused(key, sealed, context=b"job-0043")  # the object's identity is bound
    assert _open(key, sealed) == data


@settings(max_examples=40, deadline=None)
@given(
    size=st.one_of(
        st.sampled_from([0, 1, SEG - 1, SEG, SEG + 1, 3 << 20]),
        st.integers(min_value=0, max_value=6 << 20),
    ),
    threads=st.integers(min_value=1, max_value=4),
)
def test_round_trip_random_sizes_in_memory(size: int, threads: int) -> None:
    key = os.urandom(32)
    data = os.urandom(size)
    sealed = _seal(key, data, threads)
    assert len(sealed) == HDR + size + 16 * max(1, -(-size // SEG))
    assert _open(key, sealed) == data


@settings(max_examples=15, deadline=None)
@given(
    size=st.one_of(
        st.sampled_from([0, 1, SEG - 1, SEG, SEG + 1, (1 << 20) - 1, 5 << 20]),
        st.integers(min_value=0, max_value=4 << 20),
    )
)
def test_round_trip_through_a_pipe_and_files(
    tmp_path_factory: pytest.TempPathFactory, size: int
) -> None:
    tmp = tmp_path_factory.mktemp("s")
    key = os.urandom(32)
    data = os.urandom(size)
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            for off in range(0, size, 65521):
                f.write(data[off : off + 65521])

    feeder = threading.Thread(target=feed)
    feeder.start()
    state = _native.StreamState()
    with (tmp / "sealed").open("w+b") as out:
        n = _native.stream_seal_fd(
            key, CONTEXT, SHIFT, 2, _native.STREAM_DIRECT, r, out.fileno(), state
        )
        feeder.join()
        os.close(r)
        assert n == _native.stream_sealed_size(size, SHIFT) == state.bytes_out
        assert state.bytes_in == size
        out.seek(0)
        assert _native.stream_open_fd(key, CONTEXT, 2, 0, out.fileno(), -1, state) == size
        out.seek(0)
        with (tmp / "clear").open("w+b") as clear:
            assert (
                _native.stream_open_fd(key, CONTEXT, 2, 0, out.fileno(), clear.fileno(), state)
                == size
            )
        assert (tmp / "clear").read_bytes() == data
        out.seek(0)
        assert _open(key, out.read()) == data


def test_descriptor_open_names_the_bad_segment(tmp_path: Path) -> None:
    key = os.urandom(32)
    sealed = bytearray(_seal(key, os.urandom(40 * SEG)))
    sealed[HDR + 31 * FULL + 5] ^= 1
    path = tmp_path / "bad"
    path.write_bytes(sealed)
    state = _native.StreamState()
    with path.open("rb") as f, pytest.raises(_native.NativeError) as info:
        _native.stream_open_fd(key, CONTEXT, 2, 0, f.fileno(), -1, state)
    assert info.value.errno == errno.EBADMSG and state.bad_segment == 31


def _cancel_when(state: _native.StreamState, moved: int) -> threading.Thread:
    """A poller that cancels once `moved` bytes went through and nothing more comes."""

    def watch() -> None:
        while state.bytes_moved < moved:
            threading.Event().wait(0.01)
        threading.Event().wait(0.3)
        state.cancel()

    t = threading.Thread(target=watch)
    t.start()
    return t


def test_a_stalled_source_or_reader_is_abandoned_on_cancel(tmp_path: Path) -> None:
    """A client that stops feeding a pipe (or stops reading the plaintext) would hold the
    stream's thread for ever in read() or write(): reads and writes on a pipe wait in
    ticks, and a cancel ends the call with ECANCELED. bytes_moved counts each read, so a
    poller sees a trickle long before a slot fills."""
    key = os.urandom(32)
    r, w = os.pipe()
    os.write(w, b"x" * 1000)  # a trickle, then nothing; the writer stays open
    state = _native.StreamState()
    poller = _cancel_when(state, 1000)
    with (tmp_path / "sealed").open("w+b") as out, pytest.raises(_native.NativeError) as info:
        _native.stream_seal_fd(key, CONTEXT, SHIFT, 2, 0, r, out.fileno(), state)
    poller.join()
    assert info.value.errno == errno.ECANCELED
    assert state.bytes_moved == 1000 + HDR  # the trickle read, the header written
    os.close(r)
    os.close(w)

    # The plaintext into a pipe nobody reads: the writer blocks once the pipe is full.
    sealed = tmp_path / "big"
    sealed.write_bytes(_seal(key, os.urandom(64 * SEG)))
    r, w = os.pipe()
    state = _native.StreamState()
    poller = _cancel_when(state, sealed.stat().st_size)  # the whole input read
    with sealed.open("rb") as f, pytest.raises(_native.NativeError) as info:
        _native.stream_open_fd(key, CONTEXT, 2, 0, f.fileno(), w, state)
    poller.join()
    assert info.value.errno == errno.ECANCELED
    assert state.bytes_out < 64 * SEG
    os.close(r)
    os.close(w)
