"""The encrypted job store on the real engines (native streams, native overwrite, a key
chain on software keys): round trips from pipes and files, the owner rules, tampering
caught before any plaintext, crypto-erase checked against copies of the store and the
database, overwrite of the ciphertext on HDD, the S-1 policies, crash leftovers, key
rotation and purge."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Subject
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.store.service import ObjectKind, StoreSettings
from mfpsecd.wipe.model.overwrite_plan import TEMPORARY_MODES, Medium
from tests.support.store_stack import (
    ADMIN,
    ALICE,
    CLI,
    SEG,
    put_bytes,
    read_bytes,
    run,
    stack,
)


@pytest.mark.sfr("FDP_DSK_EXT.1")
@pytest.mark.spec("E-1", "E-2", "E-4")
def test_put_and_read_from_pipes_and_files_only_ciphertext_on_disk(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            marker = b"CONFIDENTIAL-CONTRACT-" * 5000
            ids = [
                await put_bytes(s, data) for data in (b"", b"x", marker, os.urandom(3 * SEG + 5))
            ]
            src = tmp_path / "scan.tiff"
            src.write_bytes(marker * 3)
            with src.open("rb") as f:
                info = await s.store.put(
                    f.fileno(), owner="alice", job="job-2", kind=ObjectKind.BOX, name="scan.tiff"
                )
            assert await read_bytes(s, ids[0]) == b""
            assert await read_bytes(s, ids[2]) == marker
            assert await read_bytes(s, info.id) == marker * 3
            listed = {o.id: o for o in await s.store.objects(ALICE)}
            assert set(listed) == {*ids, info.id}
            assert listed[info.id].expires_at != "" and listed[ids[0]].expires_at == ""
            for path in s.objects.iterdir():
                assert path.stat().st_mode & 0o777 == 0o600
                assert path.stat().st_size == listed[path.name].sealed_size
                assert b"CONFIDENTIAL" not in path.read_bytes()
            status = await s.store.status()
            assert status.objects == 5 and status.by_kind == {"spool": 4, "box": 1}
            assert status.delete_method.startswith("crypto-erase, then overwrite")

    run(scenario)


@pytest.mark.sfr("FDP_ACC.1", "FDP_ACF.1", "FMT_MSA.3")
@pytest.mark.spec("A-10", "A-3")
def test_owner_rules(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            mine = await put_bytes(s, b"alice's page")
            theirs = await put_bytes(s, b"bob's page", owner="bob")
            assert [o.id for o in await s.store.objects(ALICE)] == [mine]
            assert {o.id for o in await s.store.objects(ADMIN)} == {mine, theirs}
            for attempt in (
                lambda: read_bytes(s, theirs, ALICE),
                lambda: s.store.delete(theirs, ALICE, CLI),
            ):
                with pytest.raises(MfpsecError) as info:
                    await attempt()
                # Another user's object is not even confirmed to exist.
                assert info.value.code is ErrorCode.STORE_OBJECT_NOT_FOUND
            assert await read_bytes(s, theirs, ADMIN) == b"bob's page"
            await s.store.delete(theirs, ADMIN, CLI)
            assert [o.id for o in await s.store.objects(ADMIN)] == [mine]

    run(scenario)


def test_tampering_is_caught_before_any_plaintext(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            data = os.urandom(10 * SEG)
            object_id = await put_bytes(s, data)
            path = s.objects / object_id
            sealed = path.read_bytes()
            damaged = bytearray(sealed)
            damaged[16 + 7 * (SEG + 16) + 100] ^= 1  # segment 7 of 10
            for content, segment in ((bytes(damaged), 7), (sealed[: 16 + 4 * (SEG + 16)], 3)):
                path.write_bytes(content)
                out = tmp_path / "out"
                with out.open("w+b") as f:
                    with pytest.raises(MfpsecError) as info:
                        await s.store.read(object_id, ALICE, f.fileno(), CLI)
                    assert info.value.code is ErrorCode.STORE_INTEGRITY
                    assert info.value.params["segment"] == segment
                assert out.stat().st_size == 0  # not one byte of plaintext
            # Another object's ciphertext under this object's name: its key does not fit.
            other = await put_bytes(s, data)
            shutil.copyfile(s.objects / other, path)
            with (tmp_path / "out").open("w+b") as f, pytest.raises(MfpsecError) as info:
                await s.store.read(object_id, ALICE, f.fileno(), CLI)
            assert info.value.params["segment"] == 0
            events = await s.events(EventType.STORE_INTEGRITY)
            assert [e["segment"] for e in events] == [7, 3, 0]
            path.write_bytes(sealed)
            assert await read_bytes(s, object_id) == data

    run(scenario)


def _blobs(conn: sqlite3.Connection) -> list[bytes]:
    return [bytes(r[0]) for r in conn.execute("SELECT sealed_key FROM store_objects")]


@pytest.mark.sfr("FCS_CKM.4", "FDP_RIP.1")
@pytest.mark.spec("E-3", "K-4", "W-1", "W-2")
@pytest.mark.parametrize("medium", [Medium.HDD, Medium.SSD])
def test_delete_is_a_crypto_erase_and_overwrites_on_hdd(tmp_path: Path, medium: Medium) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, medium) as s:
            data = b"salary list " * 4000
            object_id = await put_bytes(s, data)
            keep = await put_bytes(s, b"another user's letter")
            path = s.objects / object_id
            # A second name for the inode: shows what the delete left in its blocks.
            witness = tmp_path / "witness"
            os.link(path, witness)
            ciphertext = witness.read_bytes()
            with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
                (sealed_key,) = conn.execute(
                    "SELECT sealed_key FROM store_objects WHERE id = ?", (object_id,)
                ).fetchone()
            conn.close()
            await s.store.delete(object_id, ALICE, CLI)
            assert not path.exists()
            remains = witness.read_bytes()
            if medium is Medium.HDD:
                # W-1 temporary-data mode 2 (0x00, 0xFF, 0x61, verified) over the whole file.
                last = TEMPORARY_MODES[2].passes[-1].byte
                assert remains == bytes([last]) * len(ciphertext)
            else:
                assert remains == ciphertext  # flash: crypto-erase alone

            # A copy of everything on disk, the master key at hand: the object's key is
            # nowhere, and no remaining key opens its ciphertext.
            copy = tmp_path / "copy"
            shutil.copytree(tmp_path, copy, ignore=shutil.ignore_patterns("copy"))
            for copied in copy.rglob("*"):
                if copied.is_file():
                    assert bytes(sealed_key) not in copied.read_bytes(), copied
            events = await s.events(EventType.STORE_DELETE)
            assert events[-1]["object"] == object_id and events[-1]["reason"] == "request"
            assert str(events[-1]["method"]).startswith("crypto-erase; ")
            with sqlite3.connect(copy / "state.sqlite3") as conn:
                blobs = _blobs(conn)
            conn.close()
            assert len(blobs) == 1  # the other object's
            if medium is not Medium.HDD:
                # The ciphertext left in flash cells, under the remaining object's name:
                # the one key still stored (unwrapped with the master key) does not open it.
                shutil.copyfile(witness, s.objects / keep)
                with (tmp_path / "o").open("w+b") as f, pytest.raises(MfpsecError) as info:
                    await s.store.read(keep, ALICE, f.fileno(), CLI)
                assert info.value.code is ErrorCode.STORE_INTEGRITY

    run(scenario)


def test_where_an_overwrite_cannot_reach_the_blocks_status_says_crypto_erase_only(
    tmp_path: Path,
) -> None:
    """W-1 on a copy-on-write or data-journalled filesystem: an in-place overwrite would
    write new blocks and leave the old ones; the store does not pretend, it says that
    crypto-erase is the protection, and only unlinks."""

    async def scenario() -> None:
        async with stack(tmp_path, Medium.HDD, not_in_place="btrfs is copy-on-write") as s:
            status = await s.store.status()
            assert status.delete_method.startswith("crypto-erase only (btrfs is copy-on-write")
            object_id = await put_bytes(s, b"salary list " * 100)
            witness = tmp_path / "witness"
            os.link(s.objects / object_id, witness)
            ciphertext = witness.read_bytes()
            await s.store.delete(object_id, ALICE, CLI)
            assert witness.read_bytes() == ciphertext  # not overwritten: it would not help
            events = await s.events(EventType.STORE_DELETE)
            assert "btrfs is copy-on-write, so crypto-erase is the protection" in str(
                events[-1]["method"]
            )

    run(scenario)


@pytest.fixture
def loop_ext4(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A real ext4 on a loop device, mounted: (the mount point, the backing image)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop device needs root")
    image, mnt = tmp_path / "state.img", tmp_path / "mnt"
    mnt.mkdir()
    with image.open("wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        yield mnt, image
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.sfr("FDP_DSK_EXT.1", "FPT_KYP_EXT.1")
@pytest.mark.spec("E-1", "E-2", "E-4", "K-1", "K-4")
@pytest.mark.root
def test_a_deleted_objects_name_and_key_are_nowhere_on_the_block_device(
    loop_ext4: tuple[Path, Path],
) -> None:
    """An attacker holding the disk reads its raw blocks, free ones included: after a
    delete, neither the document's name nor its sealed key is there (not in the state
    database, not in the WAL's freed blocks)."""
    mnt, image = loop_ext4
    name = "Quarterly-salaries-" + os.urandom(6).hex() + ".pdf"

    async def scenario() -> bytes:
        async with stack(mnt / "state") as s:
            object_id = await put_bytes(s, b"salary list " * 100, name=name)
            with sqlite3.connect(mnt / "state" / "state.sqlite3") as conn:
                (sealed,) = conn.execute(
                    "SELECT sealed_key FROM store_objects WHERE id = ?", (object_id,)
                ).fetchone()
            conn.close()
            # While it lives, the name is listed, but only sealed on the disk.
            (listed,) = await s.store.objects(ALICE)
            assert (listed.name, listed.job) == (name, "job-1")
            await s.state.checkpoint()
            os.sync()
            assert name.encode() not in image.read_bytes()
            await s.store.delete(object_id, ALICE, CLI)
            return bytes(sealed)

    sealed = asyncio.run(scenario())
    os.sync()
    subprocess.run(["umount", str(mnt)], check=True)
    raw = image.read_bytes()
    assert name.encode() not in raw
    assert sealed not in raw and sealed[:32] not in raw


def test_names_stored_in_the_clear_before_are_sealed_at_start(tmp_path: Path) -> None:
    """A row from before the names were sealed (plaintext job and name columns) gets
    them sealed under its object's key at the next start, its plaintext emptied."""

    async def first() -> str:
        async with stack(tmp_path) as s:
            return await put_bytes(s, b"old page", name="Old-contract.pdf")

    first_id = asyncio.run(first())
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:  # as the old schema left it
        conn.execute(
            "UPDATE store_objects SET job = 'job-old', name = 'Old-contract.pdf', "
            "meta_nonce = NULL, meta_sealed = NULL WHERE id = ?",
            (first_id,),
        )
    conn.close()

    async def second() -> None:
        async with stack(tmp_path) as s:
            (listed,) = await s.store.objects(ALICE)
            assert (listed.id, listed.job, listed.name) == (first_id, "job-old", "Old-contract.pdf")
            rows = await s.state.run(
                lambda c: c.execute(
                    "SELECT job, name, meta_sealed IS NOT NULL FROM store_objects"
                ).fetchall()
            )
            assert [tuple(r) for r in rows] == [("", "", 1)]
            # Without the key chain the objects are still listed, without their names.
            await s.chain.close()
            (locked,) = await s.store.objects(ALICE)
            assert (locked.id, locked.name, locked.job) == (first_id, "", "")

    asyncio.run(second())


def test_policies_boxes_secure_print_and_printed(tmp_path: Path) -> None:
    settings = StoreSettings(
        box_retention_s=3600,
        secure_print_timeout_s=600,
        encrypted_pdf_retention_s=7200,
        id_print_timeout_s=900,
        sweep_interval_s=60,
    )

    async def scenario() -> None:
        async with stack(tmp_path, settings=settings) as s:
            box = await put_bytes(s, b"box doc", kind=ObjectKind.BOX)
            held = await put_bytes(s, b"held job", kind=ObjectKind.SECURE_PRINT)
            printed = await put_bytes(s, b"printed job", kind=ObjectKind.SECURE_PRINT)
            spool = await put_bytes(s, b"spool", kind=ObjectKind.SPOOL)
            pdf = await put_bytes(s, b"%PDF-1.7 encrypted", kind=ObjectKind.ENCRYPTED_PDF)
            id_held = await put_bytes(s, b"id job", kind=ObjectKind.ID_PRINT)
            id_printed = await put_bytes(s, b"id job printed", kind=ObjectKind.ID_PRINT)
            for not_printable in (spool, box, pdf):  # only jobs held for printing are
                with pytest.raises(MfpsecError):
                    await s.store.printed(not_printable, ALICE, CLI)
            await s.store.printed(printed, ALICE, Subject(origin="panel", user="alice"))
            await s.store.printed(id_printed, ALICE, Subject(origin="panel", user="alice"))
            assert await s.store.sweep() == 0
            await s.clock.advance(601)  # the secure-print timeout, not yet ID & Print's
            assert await s.store.sweep() == 1
            await s.clock.advance(300)
            assert await s.store.sweep() == 1
            await s.clock.advance(3000)  # the box retention, not yet the encrypted PDF's
            assert await s.store.sweep() == 1
            assert {o.id for o in await s.store.objects(ADMIN)} == {spool, pdf}
            await s.clock.advance(3600)
            assert await s.store.sweep() == 1
            assert [o.id for o in await s.store.objects(ADMIN)] == [spool]
            deleted = {e["object"]: e["reason"] for e in await s.events(EventType.STORE_DELETE)}
            assert deleted == {
                printed: "printed",
                id_printed: "printed",
                held: "timeout",
                id_held: "timeout",
                box: "retention",
                pdf: "retention",
            }

    run(scenario)


def test_crash_leftovers_are_removed_at_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            kept = await put_bytes(s, b"kept")
            lost = await put_bytes(s, b"lost its ciphertext")
        (tmp_path / "store" / "objects" / lost).unlink()
        orphan = tmp_path / "store" / "objects" / "20261122-orphan"
        orphan.write_bytes(b"sealed bytes whose key was never committed")
        (tmp_path / "store" / "tmp" / "abc.part").write_bytes(b"half a put")
        async with stack(tmp_path) as s:
            assert [o.id for o in await s.store.objects(ADMIN)] == [kept]
            assert sorted(p.name for p in s.objects.iterdir()) == [kept]
            assert list((tmp_path / "store" / "tmp").iterdir()) == []
            events = await s.events(EventType.STORE_DELETE)
            assert {(e["object"], e["reason"]) for e in events} == {
                ("20261122-orphan", "orphan"),
                (lost, "ciphertext missing"),
            }
            assert await read_bytes(s, kept) == b"kept"

    run(scenario)


def test_rotation_reseals_object_keys_and_purge_erases_all(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            ids = [await put_bytes(s, f"doc {i}".encode()) for i in range(5)]
            assert await s.chain.rotate() == 2
            for i, object_id in enumerate(ids):
                assert await read_bytes(s, object_id) == f"doc {i}".encode()
            count, size = await s.store.purge(CLI)
            assert (count, size) == (5, sum(len(f"doc {i}") for i in range(5)))
            assert await s.store.objects(ADMIN) == [] and list(s.objects.iterdir()) == []
            purge = await s.events(EventType.STORE_PURGE)
            assert purge[-1]["objects"] == 5
            with pytest.raises(MfpsecError) as info:
                await read_bytes(s, ids[0])
            assert info.value.code is ErrorCode.STORE_OBJECT_NOT_FOUND

    run(scenario)


@pytest.mark.sfr("FDP_DSK_EXT.1")
@pytest.mark.spec("E-1", "E-2", "E-4")
def test_nothing_is_stored_without_the_key_chain(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            s.chain.fail(MfpsecError(ErrorCode.KEYS_UNAVAILABLE, reason="the TPM was replaced"))
            r, w = os.pipe()
            os.close(w)
            try:
                with pytest.raises(MfpsecError) as info:
                    await s.store.put(r, owner="alice", job="j", kind=ObjectKind.SPOOL, name="n")
            finally:
                os.close(r)
            assert info.value.code is ErrorCode.KEYS_UNAVAILABLE
            assert list(s.objects.iterdir()) == []

    run(scenario)


@pytest.mark.root
def test_a_full_disk_stores_nothing_and_leaves_nothing(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:

        async def scenario() -> None:
            async with stack(tmp_path, directory=mnt) as s:
                with pytest.raises(MfpsecError) as info:
                    await put_bytes(s, os.urandom(3 << 20))
                assert info.value.code is ErrorCode.STORE_FULL
                assert await s.store.objects(ADMIN) == []
                assert list(s.objects.iterdir()) == [] and list((mnt / "tmp").iterdir()) == []
                small = await put_bytes(s, b"fits")
                assert await read_bytes(s, small) == b"fits"

        run(scenario)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_job_completion_is_audited_when_output_printed_or_deleted(tmp_path: Path) -> None:
    """FAU_GEN.1 / FDP_ACF.1: job.complete says how a job ended and who ended it; a
    policy's deletion (retention, timeout) deletes but does not complete a job."""
    settings = StoreSettings(secure_print_timeout_s=600, sweep_interval_s=60)

    async def scenario() -> None:
        async with stack(tmp_path, settings=settings) as s:
            output = await put_bytes(s, b"a box document")
            assert await read_bytes(s, output) == b"a box document"
            printed = await put_bytes(s, b"held print", kind=ObjectKind.SECURE_PRINT)
            await s.store.printed(printed, ALICE, Subject(origin="panel", user="alice"))
            deleted = await put_bytes(s, b"cancelled")
            await s.store.delete(deleted, ALICE, CLI)
            expired = await put_bytes(s, b"never collected", kind=ObjectKind.SECURE_PRINT)
            await s.clock.advance(601)
            assert await s.store.sweep() == 1
            done = {
                e["object"]: (e["how"], e["outcome"], e.get("bytes"), e["job"])
                for e in await s.events(EventType.JOB_COMPLETE)
            }
            assert done == {
                output: ("output", "success", 14, "job-1"),
                printed: ("printed", "success", None, "job-1"),
                deleted: ("deleted", "success", None, "job-1"),
            }
            assert expired not in done

    run(scenario)
