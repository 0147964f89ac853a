"""Each daemon run is a row: status reports the boot count and whether the previous run
stopped cleanly (a missing stop time means a power cut or a crash)."""

from __future__ import annotations

from dataclasses import dataclass

from mfpsecd.base.state import StateConnection, StateStore


@dataclass(frozen=True)
class BootEntry:
    boot_id: int
    boot_count: int
    previous_shutdown: str  # "clean" | "unclean" | "none"


class BootLog:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def record_start(self, started_at: str, version: str) -> BootEntry:
        def tx(conn: StateConnection) -> BootEntry:
            last = conn.execute("SELECT stopped_at FROM boots ORDER BY id DESC LIMIT 1").fetchone()
            previous = "none" if last is None else ("clean" if last[0] else "unclean")
            cur = conn.execute(
                "INSERT INTO boots (started_at, version) VALUES (?, ?)", (started_at, version)
            )
            row = conn.execute("SELECT COUNT(*) FROM boots").fetchone()
            assert row is not None and cur.lastrowid is not None
            return BootEntry(cur.lastrowid, int(str(row[0])), previous)

        return await self._store.run(tx)

    async def record_stop(self, boot_id: int, stopped_at: str) -> None:
        def tx(conn: StateConnection) -> None:
            conn.execute("UPDATE boots SET stopped_at = ? WHERE id = ?", (stopped_at, boot_id))

        await self._store.run(tx)
