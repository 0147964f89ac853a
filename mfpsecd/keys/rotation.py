"""A master key rotation (K-3) as its holders see it: every sealed record moves from the
old generation to the new one in batches, each batch one transaction, so that a power cut
between any two leaves records under either generation, both of which still open."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mfpsecd.base.state import StateConnection
from mfpsecd.keys.chain_rows import set_fact


@dataclass(frozen=True)
class SealedRecord:
    aad: bytes
    nonce: bytes
    sealed: bytes
    what: str  # named in errors: "secret smtp-password"


# reseal(old, new, record) → (nonce, sealed) under the new generation.
Reseal = Callable[[int, int, SealedRecord], tuple[bytes, bytes]]
# Supplied by each holder of sealed records (the secret store, the job store's object
# keys): re-seal up to `limit` records of generation old → how many.
Resealer = Callable[[int, int, int, Reseal], Awaitable[int]]


async def move_records(
    resealers: list[Resealer], old: int, new: int, batch: int, reseal: Reseal
) -> int:
    """Every holder's records of generation old re-sealed under new. → how many moved."""
    moved = 0
    for resealer in resealers:
        while True:
            count = await resealer(old, new, batch, reseal)
            moved += count
            if count < batch:
                break
    return moved


def add_pending(conn: StateConnection, generation: int, wrapped: bytes, now: str) -> None:
    """Step 1: the new generation, stored beside the active one."""
    conn.execute(
        "INSERT INTO master_keys (generation, status, wrapped, created_at) "
        "VALUES (?, 'pending', ?, ?)",
        (generation, wrapped, now),
    )


def activate(conn: StateConnection, old: int, new: int, now: str) -> None:
    """Step 3: the old generation deleted, the new one active, in one transaction. Fails
    (foreign key) if any record still references the old generation."""
    conn.execute("DELETE FROM master_keys WHERE generation = ?", (old,))
    conn.execute("UPDATE master_keys SET status = 'active' WHERE generation = ?", (new,))
    set_fact(conn, "rotated_at", now)
