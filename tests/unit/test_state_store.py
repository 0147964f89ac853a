from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.sqlite_state import MIGRATIONS, SqliteState
from mfpsecd.system.boots import BootLog


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


def _at_version(db: Path, version: int) -> sqlite3.Connection:
    """A state database as a daemon of that schema version left it (empty)."""
    conn = sqlite3.connect(db)
    for v, script in enumerate(MIGRATIONS[:version], 1):
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {v}")
    return conn


def test_the_ip_filter_lists_move_to_snapshot_rows_in_the_order_entered(tmp_path: Path) -> None:
    """Schema 17: a policy stored as one JSON document by an older daemon (schema 16)
    becomes one snapshot row per list, in the order entered; the document keeps the
    rest."""
    db = tmp_path / "state.sqlite3"
    conn = _at_version(db, 16)
    conn.execute(
        "INSERT INTO net_policy (id, policy) VALUES (1, ?)",
        (
            '{"allow":["4:a000000-affffff","4:c0a80000-c0a8ffff"],"deny":["4:a070332-a070332"],'
            '"quick":true,"enabled":["http"]}',
        ),
    )
    conn.commit()
    conn.close()

    async def run() -> tuple[str, list[tuple[object, ...]]]:
        s = SqliteState(db)
        await s.open()
        got = await s.run(
            lambda c: (
                str(c.execute("SELECT policy FROM net_policy").fetchone()[0]),  # type: ignore[index]
                c.execute("SELECT list, op, packed FROM net_ranges ORDER BY seq").fetchall(),
            )
        )
        await s.close()
        return got

    policy, rows = asyncio.run(run())
    assert rows == [
        ("allow", "snapshot", "4:a000000-affffff\n4:c0a80000-c0a8ffff"),
        ("deny", "snapshot", "4:a070332-a070332"),
    ]
    assert policy == '{"quick":true,"enabled":["http"]}'


def test_a_failed_sanitization_from_before_gets_its_error_typed(tmp_path: Path) -> None:
    """Schema 18: a job row of an older daemon (schema 17) keeps its text and gets the
    wire name the text starts with as its error code; one without an error gets none."""
    db = tmp_path / "state.sqlite3"
    conn = _at_version(db, 17)
    for id_, state, error in (
        ("j1", "failed", "io.mfpsecd.Wipe.VerifyFailed target=hdd0 offset=20497"),
        ("j2", "completed", ""),
        ("j3", "completed", "certificate not signed: the device identity key is unavailable"),
    ):
        conn.execute(
            "INSERT INTO wipe_jobs (id, target, mode, plan, media, operator, state, size, "
            "started_at, error) VALUES (?, 'hdd0', 3, '{}', '{}', '{}', ?, 4096, 't', ?)",
            (id_, state, error),
        )
    conn.commit()
    conn.close()

    async def run() -> list[tuple[object, ...]]:
        s = SqliteState(db)
        await s.open()
        rows = await s.run(
            lambda c: c.execute(
                "SELECT id, error_code, error_params FROM wipe_jobs ORDER BY id"
            ).fetchall()
        )
        await s.close()
        return rows

    assert asyncio.run(run()) == [
        ("j1", "io.mfpsecd.Wipe.VerifyFailed", "{}"),
        ("j2", "", "{}"),
        ("j3", "", "{}"),
    ]
