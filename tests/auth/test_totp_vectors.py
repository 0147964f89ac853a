"""TOTP against the standard's own answers (FCS_COP.1 keyed hash, A-9): RFC 6238
appendix B's SHA-1 vectors (seed "12345678901234567890", 30 s steps) and RFC 4226
appendix D's HOTP values, cut to the six digits the second factor uses; the codes are
not computed by the product's own HOTP anywhere in this test."""

from __future__ import annotations

import pytest

from mfpsecd.auth.model import totp

SEED = memoryview(b"12345678901234567890")

# RFC 6238 appendix B, SHA-1 column: (Unix time, the 8-digit TOTP).
RFC6238 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
# RFC 4226 appendix D: HOTP(counter) for counters 0-9, six digits.
RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("A-9")
@pytest.mark.parametrize(("at", "eight_digits"), RFC6238)
def test_totp_follows_rfc_6238_appendix_b(at: int, eight_digits: str) -> None:
    code = eight_digits[-totp.DIGITS :]
    assert totp.hotp(SEED, totp.step_at(at)) == code
    assert totp.matching_step(SEED, code, at, window=0) == at // 30
    assert totp.matching_step(SEED, code, at + 90, window=1) is None  # three steps later


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("A-9")
def test_hotp_follows_rfc_4226_appendix_d() -> None:
    assert [totp.hotp(SEED, counter) for counter in range(10)] == RFC4226
