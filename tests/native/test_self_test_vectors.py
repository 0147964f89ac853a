"""The two engine self-test answers that have no published vector, derived here by an
independent implementation: the overwrite stream from AES-ECB counter blocks, and the
CTR_DRBG output by SP 800-90A (AES-256, derivation function) written from the standard.
native/crypto/selftest.c holds the same constants, and its tests pass on them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES, BLOCK_BYTES = 32, 16
SEED_BYTES = KEY_BYTES + BLOCK_BYTES


def _aes(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def test_overwrite_stream_answer_is_aes_ctr_from_the_byte_offset() -> None:
    key = bytes(range(32))
    stream = b"".join(_aes(key, n.to_bytes(16, "big")) for n in range(4))
    # FIPS 197 appendix C.3 first: the AES-256 under the test is the standard one.
    assert _aes(key, bytes.fromhex("00112233445566778899aabbccddeeff")).hex() == (
        "8ea2b7ca516745bfeafc49904b496089"
    )
    assert stream[20:52].hex() == (
        "4ab99fe5a6f69b3148c2363d0ebcb5deb52c83bd08a8a935182c9199d2435653"
    )


def _bcc(key: bytes, data: bytes) -> bytes:
    chained = bytes(BLOCK_BYTES)
    for i in range(0, len(data), BLOCK_BYTES):
        chained = _aes(
            key, bytes(a ^ b for a, b in zip(chained, data[i : i + BLOCK_BYTES], strict=True))
        )
    return chained


def _block_cipher_df(material: bytes, out_len: int) -> bytes:
    """SP 800-90A 10.3.2."""
    s = len(material).to_bytes(4, "big") + out_len.to_bytes(4, "big") + material + b"\x80"
    s += bytes(-len(s) % BLOCK_BYTES)
    key = bytes(range(KEY_BYTES))
    temp = b""
    i = 0
    while len(temp) < SEED_BYTES:
        temp += _bcc(key, i.to_bytes(4, "big") + bytes(BLOCK_BYTES - 4) + s)
        i += 1
    key, x = temp[:KEY_BYTES], temp[KEY_BYTES:SEED_BYTES]
    out = b""
    while len(out) < out_len:
        x = _aes(key, x)
        out += x
    return out[:out_len]


def _increment(v: bytes) -> bytes:
    return ((int.from_bytes(v, "big") + 1) % (1 << 128)).to_bytes(BLOCK_BYTES, "big")


def _update(provided: bytes, key: bytes, v: bytes) -> tuple[bytes, bytes]:
    """SP 800-90A 10.2.1.2."""
    temp = b""
    while len(temp) < SEED_BYTES:
        v = _increment(v)
        temp += _aes(key, v)
    temp = bytes(a ^ b for a, b in zip(temp[:SEED_BYTES], provided, strict=True))
    return temp[:KEY_BYTES], temp[KEY_BYTES:]


@pytest.mark.sfr("FCS_RBG_EXT.1")
@pytest.mark.spec("K-5")
def test_ctr_drbg_answer_follows_sp800_90a() -> None:
    entropy, nonce, personal = bytes(range(32)), bytes(range(0x20, 0x30)), b"mfpsecd"
    key, v = _update(
        _block_cipher_df(entropy + nonce + personal, SEED_BYTES),
        bytes(KEY_BYTES),
        bytes(BLOCK_BYTES),
    )
    outputs = []
    for _ in range(2):  # generate without additional input, twice (10.2.1.5.2)
        out = b""
        while len(out) < 32:
            v = _increment(v)
            out += _aes(key, v)
        outputs.append(out[:32].hex())
        key, v = _update(bytes(SEED_BYTES), key, v)
    assert outputs == [
        "ec542e41a1d540a471244160272c499a5051267bd0ebde27fa1be5b94155c1a4",
        "6d7b86b61d715f12c0c940cd75e4f5581b13999a8a8fe9dd5ce1ec9ad9125b23",
    ]
