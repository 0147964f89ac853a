"""The sealed password record of one user: the current verifier first, then the previous
ones the history rule keeps (A-2 "not a previously used password").

Binary, fixed-size entries, parsed as memoryviews of the caller's SecretBytes so no
verifier is ever copied into an immutable object:
  salt (16) | memory KiB (u32 BE) | iterations (u8) | lanes (u8) | Argon2id output (32)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mfpsecd.keys.model.passphrase import Cost

SALT_BYTES = 16
VERIFIER_BYTES = 32
_HEADER = struct.Struct(">16sIBB")
ENTRY_BYTES = _HEADER.size + VERIFIER_BYTES


@dataclass(frozen=True)
class Entry:
    salt: bytes
    cost: Cost
    verifier: memoryview  # into the record: valid while the record is


def entries(record: memoryview) -> list[Entry]:
    if len(record) % ENTRY_BYTES:
        raise ValueError("password record of a size that is not whole entries")
    out = []
    for at in range(0, len(record), ENTRY_BYTES):
        salt, memory, iterations, lanes = _HEADER.unpack_from(record, at)
        out.append(
            Entry(
                salt, Cost(memory, iterations, lanes), record[at + _HEADER.size : at + ENTRY_BYTES]
            )
        )
    return out


def new_record(
    salt: bytes, cost: Cost, verifier: memoryview, previous: memoryview | None, keep: int
) -> bytearray:
    """A record with this verifier as current and up to keep earlier ones after it (the
    caller zeroes the previous record and the verifier)."""
    if len(salt) != SALT_BYTES or len(verifier) != VERIFIER_BYTES:
        raise ValueError("salt or verifier of the wrong size")
    kept = 0 if previous is None else min(len(previous) // ENTRY_BYTES, keep)
    out = bytearray(ENTRY_BYTES * (1 + kept))
    _HEADER.pack_into(out, 0, salt, cost.memory_kib, cost.iterations, cost.lanes)
    out[_HEADER.size : ENTRY_BYTES] = verifier
    if kept:
        assert previous is not None
        out[ENTRY_BYTES:] = previous[: kept * ENTRY_BYTES]
    return out
