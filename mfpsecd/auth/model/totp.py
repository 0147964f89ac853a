"""TOTP one-time codes (RFC 6238 on RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30 s steps,
accepted one step either side for clock drift (SPEC A-9). Which step was used is returned
so the caller can refuse the same code (or an older one) a second time.

The seed is read through a memoryview (hmac.digest takes any buffer): it is never copied
into an immutable object here.
"""

from __future__ import annotations

import base64
import hmac
import struct
import urllib.parse

STEP_S = 30
DIGITS = 6
SEED_BYTES = 20  # RFC 4226: 160 bits for HMAC-SHA-1


def step_at(epoch_s: float) -> int:
    return int(epoch_s // STEP_S)


def hotp(seed: memoryview, counter: int) -> str:
    mac = hmac.digest(seed, struct.pack(">Q", counter), "sha1")
    at = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[at : at + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**DIGITS:0{DIGITS}d}"


def matching_step(seed: memoryview, code: str, epoch_s: float, window: int = 1) -> int | None:
    """The step (of now-window … now+window) whose code this is, or None. Every candidate
    is compared in constant time, so the answer's timing says nothing about which."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    now = step_at(epoch_s)
    found = None
    for step in range(now - window, now + window + 1):
        if hmac.compare_digest(hotp(seed, step), code) and found is None:
            found = step
    return found


def provisioning_uri(seed: memoryview, issuer: str, account: str) -> str:
    """The otpauth:// URI authenticator apps read (usually from a QR code)."""
    secret = base64.b32encode(seed).decode().rstrip("=")
    label = urllib.parse.quote(f"{issuer}:{account}")
    query = urllib.parse.urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_S,
        }
    )
    return f"otpauth://totp/{label}?{query}"
