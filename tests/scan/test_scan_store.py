"""V-1..V-4 with a real clamd (tests/support/clamd.py: a database this test builds, the
EICAR file and a body signature of our own): job data scanned on its way into the job
store, every option of the seed's outcome table, and every way a scan fails (clamd down,
clamd hung, data larger than its StreamMaxLength) under both failure policies."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mfpsecd.audit.events import EventType
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthState
from mfpsecd.scan.backends.clamd import Clamd
from mfpsecd.scan.model.outcome import FailurePolicy, RxOption, Source
from mfpsecd.scan.posture import virus_scan
from mfpsecd.scan.service import CHUNK, ScanSettings, VirusScan
from mfpsecd.store.service import SYSTEM_REQUESTER, ObjectInfo
from tests.support.clamd import BODY, BODY_NAME, EICAR, EICAR_NAME, clamd, requires_clamd
from tests.support.store_stack import Stack, put_bytes, run, stack

pytestmark = requires_clamd
CLEAN = b"%PDF-1.7 a page of a print job\n" * 4096  # 120 KiB


def _scan(
    socket: str,
    rx: RxOption = RxOption.DELETE,
    on_failure: FailurePolicy = FailurePolicy.REFUSE,
    timeout_s: float = 5.0,
) -> Callable[..., VirusScan]:
    def make(*, clock, health, auditor) -> VirusScan:
        return VirusScan(
            Clamd(socket, timeout_s),
            ScanSettings(f"clamd at {socket}", rx, on_failure, 0.0),
            clock=clock,
            health=health,
            auditor=auditor,
        )

    return make


@asynccontextmanager
async def scanned(tmp: Path, make: Callable[..., VirusScan]) -> AsyncIterator[Stack]:
    async with stack(tmp, scan=make) as s:
        assert s.scan is not None
        await s.scan.check()
        yield s


async def _refused(s: Stack, data: bytes, code: ErrorCode, **kwargs: object) -> MfpsecError:
    with pytest.raises(MfpsecError) as exc:
        await put_bytes(s, data, **kwargs)  # type: ignore[arg-type]
    assert exc.value.code is code
    assert not list((s.directory / "tmp").iterdir())  # nothing of it kept
    return exc.value


def _jobs(objects: list[ObjectInfo]) -> list[str]:
    return sorted(o.job for o in objects)


def test_clean_data_is_stored_and_a_virus_never_is(short_tmp: Path) -> None:
    async def scenario() -> None:
        with clamd(short_tmp / "av", stream_max=8 << 20) as av:
            async with scanned(short_tmp / "st", _scan(av.socket)) as s:
                clean_id = await put_bytes(s, CLEAN)
                (clean,) = await s.store.objects(SYSTEM_REQUESTER)
                assert clean.id == clean_id and clean.scan == "clean"
                assert CLEAN[:64] not in (s.objects / clean_id).read_bytes()  # sealed
                err = await _refused(s, EICAR, ErrorCode.STORE_VIRUS_FOUND, job="job-2")
                assert err.params == {"signature": EICAR_NAME, "job_action": "delete"}
                # The body signature, split across two chunks of the copy: the engine
                # sees the stream whole.
                split = b"x" * (CHUNK - 10) + BODY + b"y" * 5000
                err = await _refused(s, split, ErrorCode.STORE_VIRUS_FOUND, job="job-3")
                assert err.params["signature"] == BODY_NAME
                assert [o.id for o in await s.store.objects(SYSTEM_REQUESTER)] == [clean_id]
                found = await s.events(EventType.VIRUS_DETECTED)
                assert [(e["signature"], e["job"], e["owner"]) for e in found] == [
                    (EICAR_NAME, "job-2", "alice"),
                    (BODY_NAME, "job-3", "alice"),
                ]
                assert found[1]["bytes"] == len(split)

    run(scenario)


# (source, option) -> what the job gets (the seed's table; the infected data is never kept)
TABLE = [
    (Source.SCAN_TO_SEND, RxOption.CONTINUE, "delete"),
    (Source.FAX_TO_SEND, RxOption.CONTINUE, "delete"),
    (Source.PRINT, RxOption.CONTINUE, "execute"),
    (Source.FAX_RECEIVED, RxOption.CONTINUE, "execute"),
    (Source.PRINT, RxOption.DELETE, "delete"),
    (Source.FAX_RECEIVED, RxOption.DELETE, "execute"),
    (Source.EMAIL_RECEIVED, RxOption.DELETE, "execute"),
    (Source.PRINT, RxOption.DELETE_ALL, "delete"),
    (Source.FAX_RECEIVED, RxOption.DELETE_ALL, "delete"),
    (Source.EMAIL_RECEIVED, RxOption.DELETE_ALL, "delete"),
    (Source.SCAN_TO_SEND, RxOption.DELETE_ALL, "delete"),
]


def test_every_option_of_the_outcome_table(short_tmp: Path) -> None:
    async def scenario() -> None:
        with clamd(short_tmp / "av") as av:
            for n, (source, option, action) in enumerate(TABLE):
                async with scanned(short_tmp / f"st{n}", _scan(av.socket, option)) as s:
                    # The job's first page is clean and stored; its second carries a virus.
                    await put_bytes(s, CLEAN, job="job-9", source=source)
                    await put_bytes(s, CLEAN, job="other", source=source)
                    err = await _refused(
                        s, BODY * 3, ErrorCode.STORE_VIRUS_FOUND, job="job-9", source=source
                    )
                    assert err.params["job_action"] == action, (source, option)
                    left = _jobs(await s.store.objects(SYSTEM_REQUESTER))
                    expected = ["other"] if action == "delete" else ["job-9", "other"]
                    assert left == expected, (source, option)
                    (found,) = await s.events(EventType.VIRUS_DETECTED)
                    assert found["action"] == action and found["option"] == option.value
                    assert found["source"] == source.value
                    assert found["deleted"] == (1 if action == "delete" else 0)
                    if action == "delete":
                        (gone,) = await s.events(EventType.STORE_DELETE)
                        assert gone["reason"] == "virus" and gone["job"] == "job-9"

    run(scenario)


def test_clamd_down_refuses_or_stores_marked_by_policy(short_tmp: Path) -> None:
    async def scenario() -> None:
        with clamd(short_tmp / "av") as av:
            sock = av.socket
        # clamd has stopped: fail closed by default ...
        async with scanned(short_tmp / "a", _scan(sock)) as s:
            assert s.health.get("virus-scan").state is HealthState.FAILED  # type: ignore[union-attr]
            item = virus_scan(s.scan)
            assert item.state.value == "off" and "refused meanwhile" in item.detail
            err = await _refused(s, CLEAN, ErrorCode.STORE_SCAN_FAILED)
            assert "cannot be reached" in str(err.params["reason"])
            assert not await s.store.objects(SYSTEM_REQUESTER)
            (failed,) = await s.events(EventType.SCAN_FAILED)
            assert failed["policy"] == "refuse" and failed["stored"] is False
        # ... or stored, marked and audited as not scanned.
        async with scanned(
            short_tmp / "b", _scan(sock, on_failure=FailurePolicy.STORE_UNSCANNED)
        ) as s:
            object_id = await put_bytes(s, CLEAN)
            (o,) = await s.store.objects(SYSTEM_REQUESTER)
            assert o.id == object_id and o.scan == "not-scanned"
            (failed,) = await s.events(EventType.SCAN_FAILED)
            assert failed["stored"] is True and failed["object"] == object_id

    run(scenario)


def test_a_hung_clamd_times_out_and_the_next_job_is_scanned_again(short_tmp: Path) -> None:
    async def scenario() -> None:
        with clamd(short_tmp / "av") as av:
            async with scanned(short_tmp / "st", _scan(av.socket, timeout_s=1.0)) as s:
                av.pause()
                try:
                    err = await _refused(s, CLEAN, ErrorCode.STORE_SCAN_FAILED)
                finally:
                    av.resume()
                assert "1 s" in str(err.params["reason"])
                assert (await s.store.objects(SYSTEM_REQUESTER)) == []
                await put_bytes(s, CLEAN)
                assert [o.scan for o in await s.store.objects(SYSTEM_REQUESTER)] == ["clean"]

    run(scenario)


def test_data_larger_than_clamd_takes_is_a_failed_scan(short_tmp: Path) -> None:
    big = os.urandom(3 << 20)  # clamd's StreamMaxLength here: 1 MiB

    async def scenario() -> None:
        with clamd(short_tmp / "av", stream_max=1 << 20) as av:
            async with scanned(short_tmp / "a", _scan(av.socket)) as s:
                err = await _refused(s, big, ErrorCode.STORE_SCAN_FAILED)
                assert "size limit" in str(err.params["reason"])
            stored = _scan(av.socket, on_failure=FailurePolicy.STORE_UNSCANNED)
            async with scanned(short_tmp / "b", stored) as s:
                await put_bytes(s, big)
                (o,) = await s.store.objects(SYSTEM_REQUESTER)
                assert o.scan == "not-scanned" and o.size == len(big)

    run(scenario)
