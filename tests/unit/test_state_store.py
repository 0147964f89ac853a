from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from mfpsecd.backends.sqlite_state import MIGRATIONS, SqliteState
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.services.boots import BootLog


def test_migrations_wal_and_boot_log(tmp_path: Path) -> None:
    db = tmp_path / "s" / "state.sqlite3"

    async def run() -> None:
        s = SqliteState(db)
        await s.open()
        assert s.schema_version == len(MIGRATIONS)
        boots = BootLog(s)
        b1 = await boots.record_start("t1", "v")
        assert (b1.boot_count, b1.previous_shutdown) == (1, "none")
        b2 = await boots.record_start("t2", "v")  # b1 never stopped: a power cut
        assert (b2.boot_count, b2.previous_shutdown) == (2, "unclean")
        await boots.record_stop(b2.boot_id, "t3")
        b3 = await boots.record_start("t4", "v")
        assert b3.previous_shutdown == "clean"
        await s.close()

    asyncio.run(run())
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    conn.close()
    assert db.stat().st_mode & 0o777 == 0o600


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(MfpsecError) as info:
        asyncio.run(SqliteState(db).open())
    assert info.value.code is ErrorCode.STATE_UNAVAILABLE
    assert "newer than this daemon" in info.value.params["reason"]


def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    garbage = b"this is not a database" * 100
    db.write_bytes(garbage)
    with pytest.raises(MfpsecError) as info:
        asyncio.run(SqliteState(db).open())
    assert info.value.code is ErrorCode.STATE_UNAVAILABLE
    assert db.read_bytes() == garbage  # evidence kept for the service engineer


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    async def run() -> None:
        s = SqliteState(tmp_path / "state.sqlite3")
        await s.open()

        def bad(conn):
            conn.execute("INSERT INTO boots (started_at, version) VALUES ('x', 'v')")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await s.run(bad)
        count = await s.run(lambda c: c.execute("SELECT COUNT(*) FROM boots").fetchone())
        assert count == (0,)
        await s.close()

    asyncio.run(run())
