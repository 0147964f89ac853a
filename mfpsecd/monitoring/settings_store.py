"""The monitoring settings an administrator set, in the state database (one row): read at
start before anything that reports is built, written only after the new settings were
built in full, removed by a reset."""

from __future__ import annotations

from dataclasses import dataclass

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.monitoring.model.document import Sections, decode, encode


@dataclass(frozen=True)
class Stored:
    sections: Sections
    by: str
    at: str


async def load(state: StateStore) -> Stored | None:
    def tx(conn: StateConnection) -> tuple[object, ...] | None:
        row = conn.execute(
            "SELECT document, by_user, at FROM monitoring_settings WHERE id = 1"
        ).fetchone()
        return tuple(row) if row else None

    row = await state.run(tx)
    if row is None:
        return None
    try:
        sections = decode(str(row[0]))
    except ValueError as exc:
        # Fail closed and say so: silently falling back to the file could mean forwarding
        # to a destination the administrator removed.
        raise MfpsecError(
            ErrorCode.STATE_UNAVAILABLE,
            "the stored monitoring settings do not read: mfpsec monitoring reset",
            reason=f"monitoring_settings: {exc}",
        ) from None
    return Stored(sections, str(row[1]), str(row[2]))


async def save(state: StateStore, sections: Sections, by: str, at: str) -> None:
    def tx(conn: StateConnection) -> None:
        conn.execute(
            "INSERT INTO monitoring_settings (id, document, by_user, at) VALUES (1, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET document = excluded.document, "
            "by_user = excluded.by_user, at = excluded.at",
            (encode(sections), by, at),
        )

    await state.run(tx)


async def clear(state: StateStore) -> None:
    await state.run(lambda conn: conn.execute("DELETE FROM monitoring_settings"))
