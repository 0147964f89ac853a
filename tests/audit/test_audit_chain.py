"""The audit chain and its verification: every kind of tampering is found, and where."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mfpsecd.audit import log_format as core
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.frames import frame, scan
from mfpsecd.audit.log_format import Outcome, Record, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.health import HealthRegistry
from tests.support.fakeclock import FakeClock

ADMIN = Subject(origin="cli", user="admin", role="administrator", uid=0, pid=42)


def _chain(n: int) -> list[bytes]:
    out, prev = [], core.GENESIS
    for seq in range(1, n + 1):
        rec = Record(
            seq=seq,
            time=f"2026-11-22T00:00:{seq:02d}.000000Z",
            type=EventType.MANAGEMENT,
            outcome=Outcome.SUCCESS,
            subject=ADMIN,
            object=f"setting {seq}",
            details={"value": seq, "note": "a|b=c\\d\né"},
            prev=prev.hex(),
        )
        raw = core.canonical(rec)
        prev = core.chain_hash(prev, raw)
        out.append(raw)
    return out


def test_an_intact_chain_verifies() -> None:
    chain = _chain(10)
    v = core.verify(chain)
    assert (v.ok, v.records, v.last_seq) == (True, 10, 10)
    assert core.verify(chain, checkpoint=core.Checkpoint(10, v.last_hash)).ok


def _edited(chain: list[bytes], i: int) -> list[bytes]:
    rec = core.decode(chain[i])
    forged = Record(
        **{**{f: getattr(rec, f) for f in rec.__struct_fields__}, "outcome": Outcome.FAILURE}
    )
    return [*chain[:i], core.canonical(forged), *chain[i + 1 :]]


@pytest.mark.sfr("FAU_STG.1")
@pytest.mark.spec("L-2")
@pytest.mark.parametrize(
    ("tamper", "problem", "at"),
    [
        (lambda c: _edited(c, 4), "modified", 5),  # record 5 changed: 6 no longer links to it
        (lambda c: c[:4] + c[5:], "deleted", 5),
        (lambda c: [*c[:4], c[2], *c[4:]], "inserted", 5),
        (lambda c: [*c[:4], c[5], c[4], *c[6:]], "reordered", 5),
        (
            lambda c: [*c[:4], c[4].replace(b'"setting 5"', b'"setting 5" '), *c[5:]],
            "modified",
            5,
        ),  # not canonical any more
    ],
)
def test_each_kind_of_tampering_is_detected_and_located(tamper, problem, at) -> None:
    v = core.verify(tamper(_chain(10)))
    assert not v.ok and (v.problem, v.at_seq) == (problem, at), v


def test_truncation_is_detected_against_a_checkpoint() -> None:
    chain = _chain(10)
    full = core.verify(chain)
    v = core.verify(chain[:7], checkpoint=core.Checkpoint(10, full.last_hash))
    assert (v.ok, v.problem, v.at_seq) == (False, "truncated", 8)
    # A forged rewrite of the tail does not match the checkpoint's hash.
    forged = _edited(chain, 9)
    v = core.verify(forged, checkpoint=core.Checkpoint(10, full.last_hash))
    assert (v.ok, v.problem) == (False, "modified")


def test_frames_and_torn_tails() -> None:
    data = b"".join(frame(p) for p in _chain(3))
    payloads, end, why = scan(data)
    assert (len(payloads), end, why) == (3, len(data), "")
    for cut in (1, 5, 20):
        payloads, end, why = scan(data[:-cut])
        assert len(payloads) == 2 and why
    flipped = bytearray(data)
    flipped[-6] ^= 1
    assert scan(bytes(flipped))[2] == "frame checksum mismatch"


def test_auditor_group_commit_torn_tail_and_queries(tmp_path: Path) -> None:
    path = tmp_path / "audit"

    async def first() -> None:
        clock = FakeClock()
        a = Auditor(AuditFile(path), clock, HealthRegistry(clock))
        await a.start()
        seqs = await asyncio.gather(
            *(a.record(EventType.SECRET_SET, Outcome.SUCCESS, ADMIN, f"s{i}") for i in range(50))
        )
        assert sorted(seqs) == list(range(2, 52))  # 1 is audit.start
        with pytest.raises(ZeroDivisionError):
            async with a.event(EventType.KEYS_ROTATE, ADMIN, "master key"):
                raise ZeroDivisionError
        async with a.event(EventType.KEYS_BACKUP, ADMIN, "/media/usb") as ev:
            ev.details["size"] = 512
            ev.succeed()
        await a.stop()

    asyncio.run(first())
    with (path / "audit-00000001.log").open("ab") as f:  # a power cut in mid-batch
        f.write(frame(b'{"seq":55}')[:9])

    async def second() -> None:
        clock = FakeClock()
        health = HealthRegistry(clock)
        a = Auditor(AuditFile(path), clock, health)
        await a.start()
        types = [r.type for r in await a.query(AuditQuery(limit=0))]
        assert types[0] is EventType.AUDIT_START and types[-3:] == [
            EventType.AUDIT_STOP,
            EventType.AUDIT_TAIL_REPAIRED,
            EventType.AUDIT_START,
        ]
        failures = await a.query(AuditQuery(outcome=Outcome.FAILURE, limit=0))
        assert [(r.type, r.details) for r in failures] == [
            (EventType.KEYS_ROTATE, {"error": "internal"})
        ]
        ok = await a.query(AuditQuery(types=frozenset({EventType.KEYS_BACKUP}), user="admin"))
        assert [r.details for r in ok] == [{"size": 512}]
        assert (await a.verify()).ok
        comp = health.get("audit")
        assert comp is not None and comp.state.value == "ok"
        await a.stop()

    asyncio.run(second())
    assert core.verify(scan((path / "audit-00000001.log").read_bytes())[0]).ok


@pytest.mark.sfr("FPT_STM.1")
@pytest.mark.spec("L-1")
def test_a_clock_step_is_audited_and_slewing_is_not(tmp_path: Path) -> None:
    from mfpsecd.system.timewatch import watch_time

    async def scenario() -> None:
        clock = FakeClock()
        a = Auditor(AuditFile(tmp_path / "audit"), clock, HealthRegistry(clock))
        await a.start()
        task = asyncio.create_task(watch_time(clock, a, period_s=5, tolerance_s=2))
        await clock.advance(5)
        clock.set_wall(0.001)  # NTP slew: nothing to record
        await clock.advance(5)
        clock.set_wall(-3600)  # someone sets the clock back an hour
        await clock.advance(5)
        for _ in range(50):  # the record is written by the writer task
            changes = await a.query(AuditQuery(types=frozenset({EventType.TIME_CHANGE})))
            if changes:
                break
            await asyncio.sleep(0)
        assert len(changes) == 1
        assert changes[0].details["step_s"] == -3600.0
        assert str(changes[0].details["before"]) > str(changes[0].details["after"])
        task.cancel()
        await a.stop()

    asyncio.run(scenario())
