"""L-5: the audit log is bounded; when full, the policy applies and that is recorded."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.frames import scan
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.config.schema import AuditFullPolicy
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock

USER = Subject(origin="panel", user="jdoe")


async def _open(
    tmp: Path, clock: FakeClock, policy: AuditFullPolicy, retention_days: int = 0
) -> tuple[Auditor, SqliteState, HealthRegistry]:
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    health = HealthRegistry(clock)
    store = AuditFile(tmp / "audit", segment_bytes=3000, max_bytes=12000, reserve_bytes=2000)
    auditor = Auditor(
        store,
        clock,
        health,
        state,
        full_policy=policy,
        retention_days=retention_days,
        checkpoint_every=10**9,
    )
    await auditor.start()
    return auditor, state, health


async def _fill(a: Auditor) -> int:
    """Write until the log refuses. → how many records went in."""
    n = 0
    while True:
        try:
            await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, f"job {n}", pages=n)
        except MfpsecError as exc:
            assert exc.code is ErrorCode.AUDIT_FULL
            return n
        n += 1


async def _settle(a: Auditor) -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.sfr("FAU_STG.4", "FAU_STG_EXT.1")
@pytest.mark.spec("L-3", "L-5")
def test_full_log_refuses_until_exported_then_drops_the_oldest(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        a, state, health = await _open(tmp_path, clock, AuditFullPolicy.OVERWRITE_EXPORTED)
        written = await _fill(a)
        assert written > 20
        await _settle(a)
        comp = health.get("audit")
        assert comp is not None and comp.state.value == "failed" and "full" in comp.detail
        full = await a.query(AuditQuery(types=frozenset({EventType.AUDIT_FULL}), limit=0))
        assert [(r.outcome, r.details["action"]) for r in full] == [
            (Outcome.FAILURE, "refusing audited operations")
        ]
        # Still refused: nothing was exported, so nothing may be overwritten.
        with pytest.raises(MfpsecError):
            await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, "one more")
        ran = []
        with pytest.raises(MfpsecError):  # refused before the operation even runs
            async with a.event(EventType.JOB_COMPLETE, USER, "refused"):
                ran.append(True)
        assert not ran
        exported = await a.export()
        assert len(exported) >= written
        async with a.event(EventType.JOB_COMPLETE, USER, "after export") as ev:
            ev.succeed()
        await _settle(a)
        full = await a.query(AuditQuery(types=frozenset({EventType.AUDIT_FULL}), limit=0))
        assert full[-1].outcome is Outcome.SUCCESS
        assert str(full[-1].details["action"]).startswith("dropped exported records 1-")
        verdict = await a.verify()
        assert verdict.ok, verdict
        await a.stop()
        await state.close()
        # After a restart the log still verifies from its new base.
        a, state, _ = await _open(tmp_path, clock, AuditFullPolicy.OVERWRITE_EXPORTED)
        assert (await a.verify()).ok
        await a.stop()
        await state.close()

    asyncio.run(scenario())


@pytest.mark.sfr("FAU_STG.4")
@pytest.mark.spec("L-5")
def test_refuse_policy_never_drops(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        a, state, _ = await _open(tmp_path, clock, AuditFullPolicy.REFUSE)
        await _fill(a)
        await a.export()
        with pytest.raises(MfpsecError) as exc:
            await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, "no room")
        assert exc.value.params == {"policy": "refuse"}
        # It says what frees room under this policy (not "export it": that frees nothing).
        assert "exporting alone frees nothing" in exc.value.message
        assert "audit.max_bytes" in exc.value.message
        first = (await a.query(AuditQuery(limit=0)))[0]
        assert first.seq == 1  # nothing was dropped
        await a.stop()
        await state.close()

    asyncio.run(scenario())


def test_retention_drops_old_exported_segments(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        a, state, _ = await _open(
            tmp_path, clock, AuditFullPolicy.OVERWRITE_EXPORTED, retention_days=30
        )
        for i in range(25):
            await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, f"old {i}")
        await a.export()
        await clock.advance(40 * 86400)
        await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, "recent")
        await a.apply_retention()
        await _settle(a)
        records = await a.query(AuditQuery(limit=0))
        assert records[0].seq > 1  # old segments went
        assert any(r.object == "recent" for r in records)
        drops = [r for r in records if r.type is EventType.AUDIT_FULL]
        assert drops and drops[-1].details["reason"] == "retention"
        assert (await a.verify()).ok
        await a.stop()
        await state.close()

    asyncio.run(scenario())


def test_a_log_smaller_than_a_default_segment_still_frees_room(tmp_path: Path) -> None:
    """audit.max_bytes = 1 MiB with the default 4 MiB segments was one segment that could
    never be dropped: overwrite-exported refused every audited call for ever (issue 23).
    Segments are now sized from the capacity."""

    async def scenario() -> None:
        clock = FakeClock()
        state = SqliteState(tmp_path / "state.sqlite3")
        await state.open()
        a = Auditor(
            AuditFile(tmp_path / "audit", max_bytes=1 << 20),
            clock,
            HealthRegistry(clock),
            state,
            full_policy=AuditFullPolicy.OVERWRITE_EXPORTED,
            checkpoint_every=10**9,
        )
        await a.start()
        n, full = 0, False
        while not full:  # in batches: one flush per batch, as under load
            got = await asyncio.gather(
                *(
                    a.record(
                        EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, f"job {n + i}", pages=n + i
                    )
                    for i in range(200)
                ),
                return_exceptions=True,
            )
            full = any(isinstance(g, MfpsecError) for g in got)
            n += 200
        assert len(list((tmp_path / "audit").glob("audit-*.log"))) > 4  # not one segment
        await a.export()
        actions: list[str] = []
        for round_ in range(40):  # as much again: room comes from the exported segments
            got = await asyncio.gather(
                *(
                    a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, f"again {i}")
                    for i in range(200)
                ),
                return_exceptions=True,
            )
            assert not [g for g in got if isinstance(g, BaseException)], round_
            actions = [
                str(r.details["action"])
                for r in await a.query(AuditQuery(types=frozenset({EventType.AUDIT_FULL}), limit=0))
            ]
            if actions[-1].startswith("dropped"):
                break
        assert actions[-1].startswith("dropped exported records 1-"), actions
        assert (await a.verify()).ok
        await a.stop()
        await state.close()

    asyncio.run(scenario())


def test_reading_and_exporting_a_full_log_always_works(tmp_path: Path) -> None:
    """Issue 23: while full, each audited read used the reserve kept for the log's own
    records; after a few hundred, export itself answered AuditFull and nothing could
    make room. Reads of a full log are counted instead, and one record says how many
    once there is room again."""

    async def scenario() -> None:
        clock = FakeClock()
        a, state, _ = await _open(tmp_path, clock, AuditFullPolicy.OVERWRITE_EXPORTED)
        written = await _fill(a)
        for _ in range(100):  # an auditor paging through the full log
            async with a.event(EventType.AUDIT_READ, USER, "query") as ev:
                await a.query(AuditQuery(limit=10))
                ev.succeed()
        async with a.event(EventType.AUDIT_READ, USER, "export") as ev:
            exported = await a.export()
            ev.succeed()
        assert len(exported) >= written
        async with a.event(EventType.JOB_COMPLETE, USER, "after export") as ev:
            ev.succeed()
        reads: list[dict[str, object]] = []
        for _ in range(100):
            await asyncio.sleep(0.01)
            reads = [
                dict(r.details)
                for r in await a.query(AuditQuery(types=frozenset({EventType.AUDIT_READ}), limit=0))
            ]
            if reads:
                break
        assert [(r["action"], r["count"]) for r in reads] == [
            ("reads while the log was full, not recorded one by one", 101)
        ]
        assert (await a.verify()).ok
        await a.stop()
        await state.close()

    asyncio.run(scenario())


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a file system that fills up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=False)  # files may be open


@pytest.mark.root
def test_a_full_file_system_fails_the_write_keeps_the_chain_and_recovers(
    tmp_path: Path, small_fs: Path
) -> None:
    """A full disk is not a full log: the error says what happened (not "export the
    log"), nothing of the failed batch is acknowledged, a partly written frame does not
    stay in the file, and once there is space again the chain goes on intact."""
    mnt = small_fs

    async def scenario() -> None:
        clock = FakeClock()
        state = SqliteState(tmp_path / "state.sqlite3")
        await state.open()
        health = HealthRegistry(clock)
        store = AuditFile(mnt / "audit", max_bytes=1 << 20, reserve_bytes=4096)
        a = Auditor(store, clock, health, state, checkpoint_every=10**9)
        await a.start()
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * (48 << 10))
        acknowledged, n = [], 0
        with pytest.raises(MfpsecError) as info:
            while True:
                acknowledged.append(
                    await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, f"job {n}")
                )
                n += 1
        assert info.value.code is ErrorCode.STATE_UNAVAILABLE
        assert "No space left" in str(info.value)
        comp = health.get("audit")
        assert comp is not None and comp.state.value == "failed"
        assert "write failed" in comp.detail and "No space left" in comp.detail
        for segment in sorted((mnt / "audit").iterdir()):  # no torn frame left behind
            _records, end, damage = scan(segment.read_bytes())
            assert damage == "" and end == segment.stat().st_size
        filler.unlink()
        after = await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, "space again")
        assert after == acknowledged[-1] + 1  # numbering goes on from what is on disk
        comp = health.get("audit")
        assert comp is not None and comp.state.value == "ok", comp
        verdict = await a.verify()
        assert verdict.ok, verdict
        assert verdict.last_seq == after
        await a.stop(checkpoint=False)
        await state.close()
        # And the log a restarted daemon reads is the same, without repair.
        state = SqliteState(tmp_path / "state.sqlite3")
        await state.open()
        b = Auditor(AuditFile(mnt / "audit", max_bytes=1 << 20), clock, health, state)
        await b.start()
        verdict = await b.verify()
        assert verdict.ok, verdict
        repaired = await b.query(
            AuditQuery(types=frozenset({EventType.AUDIT_TAIL_REPAIRED}), limit=0)
        )
        assert repaired == []
        await b.stop(checkpoint=False)
        await state.close()

    asyncio.run(scenario())


@pytest.mark.root
def test_recovering_from_a_write_failure_does_not_hide_a_broken_chain(
    tmp_path: Path, small_fs: Path
) -> None:
    """Status said the chain is broken; a full file system came and went: status says
    the chain is broken again, not "writing again"."""
    mnt = small_fs

    async def scenario() -> None:
        clock = FakeClock()
        state = SqliteState(tmp_path / "state.sqlite3")
        await state.open()
        health = HealthRegistry(clock)
        a = Auditor(AuditFile(mnt / "audit", max_bytes=1 << 20), clock, health, state)
        await a.start()
        for n in range(5):
            await a.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, f"job {n}")
        await a.stop(checkpoint=False)
        (segment,) = sorted((mnt / "audit").iterdir())
        data = bytearray(segment.read_bytes())
        at = data.index(b"job 2")
        data[at : at + 5] = b"job 9"  # a record rewritten
        segment.write_bytes(bytes(data))
        b = Auditor(AuditFile(mnt / "audit", max_bytes=1 << 20), clock, health, state)
        await b.start()
        broken = health.get("audit")
        assert broken is not None and broken.state.value == "failed"
        assert "chain broken" in broken.detail
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * (56 << 10))
        with pytest.raises(MfpsecError):
            while True:
                await b.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, "more")
        failing = health.get("audit")
        assert failing is not None and "write failed" in failing.detail
        filler.unlink()
        await b.record(EventType.JOB_COMPLETE, Outcome.SUCCESS, USER, "space again")
        assert health.get("audit") == broken
        await b.stop(checkpoint=False)
        await state.close()

    asyncio.run(scenario())
