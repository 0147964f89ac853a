"""Sanitization jobs and job-data overwrite on image-file targets, through the real engine:
every mode read back, flash handling, verify catching a changed block, stop and resume
from the checkpoint, cancel, refusals, and certificates that verify and catch tampering."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.audit.events import EventType
from mfpsecd.audit.service import AuditQuery
from mfpsecd.base import identity_keys
from mfpsecd.base.config.schema import DiskSection, MediumKind
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.wipe.jobs import COMPLETED
from mfpsecd.wipe.medium_marker import MARKER_BYTES
from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.model.overwrite_plan import DISCARD_MODES, Medium, PassKind
from mfpsecd.wipe.service import WipeSettings
from tests.support.wipe_stack import (
    ENGINEER,
    SIZE,
    finished,
    key_signer,
    stack,
)
from tests.support.wipe_stack import (
    spki as public_key_der,
)


def _constant(data: bytes, value: int) -> bool:
    return data == bytes([value]) * len(data)


@pytest.mark.parametrize("mode", sorted(DISCARD_MODES))
def test_every_mode_leaves_exactly_its_last_pass(tmp_path: Path, mode: int) -> None:
    snapshots: list[bytes] = []

    async def scenario() -> None:
        async def look(step: int) -> None:
            snapshots.append(s.image("hdd0").read_bytes())

        async with stack(tmp_path, before_step=look) as s:
            s.image("hdd0").write_bytes(b"\x5a" * SIZE)  # the "old data"
            view = await s.wipe.begin("hdd0", mode, ENGINEER)
            assert await finished(s.wipe, view.id) == COMPLETED
            final = s.image("hdd0").read_bytes()
            plan = DISCARD_MODES[mode]
            assert view.steps == [p.describe() for p in plan.passes] + ["verify"]
            # snapshots[k] is what pass k-1 left (snapshot 0 is the old data). Until the
            # end the medium's marker holds the last MARKER_BYTES, the same throughout.
            after = [*snapshots[1:]]
            assert len(after) == len(plan.passes)
            marker = snapshots[0][-MARKER_BYTES:]
            assert marker != b"\x5a" * MARKER_BYTES
            for k, p in enumerate(plan.passes):
                got = after[k]
                assert len(got) == SIZE and got[-MARKER_BYTES:] == marker
                if p.kind is PassKind.BYTE:
                    assert _constant(got[:-MARKER_BYTES], p.byte), (mode, k)
                else:
                    assert len(set(got[i : i + 16] for i in range(0, 1 << 16, 16))) == 4096
                    assert got != (after[k - 1] if k else snapshots[0])
            randoms = [after[k] for k, p in enumerate(plan.passes) if p.kind is PassKind.RANDOM]
            assert len(set(randoms)) == len(randoms)  # one independent stream per pass
            # Then the marker got every pass too: the whole medium is the last pass.
            last = plan.passes[-1]
            if last.kind is PassKind.BYTE:
                assert _constant(final, last.byte)
            else:
                assert final[:-MARKER_BYTES] == after[-1][:-MARKER_BYTES]
                assert final[-MARKER_BYTES:] != marker
            doc, ours = await s.wipe.verify_certificate(
                cert.encode_document(await s.wipe.certificate(view.id))
            )
            assert ours and doc.certificate.result == "success"
            assert doc.certificate.method.passes == [p.describe() for p in plan.passes]
            assert doc.certificate.verification.result == "passed"
            assert doc.certificate.media.serial == "SIM-HDD0"
            records = await s.auditor.query(
                AuditQuery(types=frozenset({EventType.SANITIZE}), limit=0)
            )
            phases = [r.details["phase"] for r in records]
            assert phases == ["start"] + ["pass"] * len(plan.passes) + ["verify", "result"]
            assert records[-1].details["certificate_sha256"] == cert.digest(doc.certificate).hex()

    asyncio.run(scenario())


def test_flash_gets_one_zero_pass_and_the_certificate_says_why(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            s.image("ssd0").write_bytes(b"\x33" * SIZE)
            view = await s.wipe.begin("ssd0", 7, ENGINEER)
            assert view.steps == ["0x00", "verify"]
            assert await finished(s.wipe, view.id) == COMPLETED
            assert _constant(s.image("ssd0").read_bytes(), 0)
            body = (await s.wipe.certificate(view.id)).certificate
            assert body.media.type == "ssd" and body.method.mode == 7
            assert "W-3" in body.method.reason

    asyncio.run(scenario())


def test_verify_catches_a_block_changed_after_the_last_pass(tmp_path: Path) -> None:
    async def scenario() -> None:
        async def corrupt(step: int) -> None:
            if step == 3:  # mode 3: 0x00, 0xFF, random, then the read-back
                with open(s.image("hdd0"), "r+b") as f:
                    f.seek(5 * 4096 + 17)
                    old = f.read(1)[0]
                    f.seek(5 * 4096 + 17)
                    f.write(bytes([old ^ 0x01]))

        async with stack(tmp_path, before_step=corrupt) as s:
            view = await s.wipe.begin("hdd0", 3, ENGINEER)
            assert await finished(s.wipe, view.id) == "failed"
            failed = s.wipe.job(view.id)
            assert "VerifyFailed" in failed.error and f"offset={5 * 4096 + 17}" in failed.error
            # Certified as FAILED, with why: never mistakable for a success.
            body = (await s.wipe.certificate(view.id)).certificate
            assert failed.certificate_digest == cert.digest(body).hex()
            assert (body.result, body.verification.result) == ("failed", "failed")
            assert body.error.startswith("io.mfpsecd.Wipe.VerifyFailed")
            assert "Result             FAILED" in cert.render_text(
                await s.wipe.certificate(view.id)
            )
            result = (
                await s.auditor.query(AuditQuery(types=frozenset({EventType.SANITIZE}), limit=0))
            )[-1]
            assert result.outcome.value == "failure" and result.details["result"] == "failed"
            assert result.details["certificate_sha256"] == failed.certificate_digest

    asyncio.run(scenario())


def test_stop_mid_pass_then_resume_from_the_checkpoint(tmp_path: Path) -> None:
    size = 64 << 20
    settings = WipeSettings(sync_every=4 << 20, poll_s=0.005)

    async def scenario() -> None:
        async with stack(tmp_path, size=size, settings=settings) as s:
            view = await s.wipe.begin("hdd0", 5, ENGINEER)
            async for v in s.wipe.watch(view.id):
                if v.step >= 1 and v.position > 0:
                    break
            job_id = view.id
        # The daemon stopped (as at a power cut the row stays `running`).
        async with stack(tmp_path, size=size, settings=settings) as s:
            first = s.wipe.job(job_id)
            assert first.resumed == 1 and first.state == "running"
            assert await finished(s.wipe, job_id) == COMPLETED
            assert _constant(s.image("hdd0").read_bytes(), 0xFF)
            body = (await s.wipe.certificate(job_id)).certificate
            assert body.resumed == 1 and body.result == "success"

    asyncio.run(scenario())


def _stopped_mid_pass(tmp_path: Path, size: int, settings: WipeSettings, mode: int) -> str:
    """A job stopped (as by a power cut) in the middle of its second step."""

    async def scenario() -> str:
        async with stack(tmp_path, size=size, settings=settings) as s:
            view = await s.wipe.begin("hdd0", mode, ENGINEER)
            async for v in s.wipe.watch(view.id):
                if v.step >= 1 and v.position > 0:
                    break
            return view.id

    return asyncio.run(scenario())


def test_a_medium_swapped_while_stopped_fails_and_certifies_nothing(tmp_path: Path) -> None:
    """The image replaced by another of the same size (blank, as a new disk would be)
    between the stop and the resume: the job must not finish on it and certify hdd0,
    whose removed medium still holds its data."""
    size = 64 << 20
    settings = WipeSettings(sync_every=4 << 20, poll_s=0.005)
    job_id = _stopped_mid_pass(tmp_path, size, settings, mode=5)
    image = tmp_path / "dev" / "disks" / "hdd0.img"
    image.unlink()
    image.write_bytes(bytes(size))  # the same size, all zeros: what mode 5 would leave

    async def scenario() -> None:
        async with stack(tmp_path, size=size, settings=settings) as s:
            assert await finished(s.wipe, job_id) == "failed"
            view = s.wipe.job(job_id)
            assert view.error.startswith("io.mfpsecd.Wipe.MediumChanged")
            assert "is not there" in view.error
            assert view.error_code == ErrorCode.WIPE_MEDIUM_CHANGED.wire_name
            assert view.error_params["target"] == "hdd0"
            assert "is not there" in view.error_params["reason"]
            # Certified only as FAILED, with why: never a success for hdd0.
            body = (await s.wipe.certificate(job_id)).certificate
            assert (body.result, body.verification.result) == ("failed", "not run")
            assert body.error.startswith("io.mfpsecd.Wipe.MediumChanged")
            assert view.certificate_digest == cert.digest(body).hex()
            assert image.read_bytes() == bytes(size)  # not one byte written to it
            records = await s.auditor.query(
                AuditQuery(types=frozenset({EventType.SANITIZE}), limit=0)
            )
            last = records[-1]
            assert (last.details["phase"], last.outcome.value) == ("result", "failure")
            assert str(last.details["error"]).startswith("io.mfpsecd.Wipe.MediumChanged")
            # What to do now: start over, on the medium now in place.
            again = await s.wipe.begin("hdd0", 1, ENGINEER)
            assert await finished(s.wipe, again.id) == COMPLETED

    asyncio.run(scenario())


def test_a_resume_on_the_same_medium_is_proven_and_audited(tmp_path: Path) -> None:
    size = 64 << 20
    settings = WipeSettings(sync_every=4 << 20, poll_s=0.005)
    job_id = _stopped_mid_pass(tmp_path, size, settings, mode=3)

    async def scenario() -> None:
        async with stack(tmp_path, size=size, settings=settings) as s:
            assert await finished(s.wipe, job_id) == COMPLETED
            records = await s.auditor.query(
                AuditQuery(types=frozenset({EventType.SANITIZE}), limit=0)
            )
            (resume,) = [r for r in records if r.details["phase"] == "resume"]
            assert resume.object == job_id and int(resume.details["offset"]) > 0
            assert int(resume.details["step"]) == 2 and int(resume.details["resumed"]) == 1

    asyncio.run(scenario())


def test_a_drive_answering_another_serial_is_another_medium(tmp_path: Path) -> None:
    size = 64 << 20
    settings = WipeSettings(sync_every=4 << 20, poll_s=0.005)
    job_id = _stopped_mid_pass(tmp_path, size, settings, mode=5)
    disks = [
        DiskSection(
            id="hdd0",
            path="disks/hdd0.img",
            medium=MediumKind.HDD,
            sanitizable=True,
            size_bytes=size,
            serial="OTHER-DRIVE",
        )
    ]

    async def scenario() -> None:
        async with stack(tmp_path, size=size, settings=settings, disks=disks) as s:
            assert await finished(s.wipe, job_id) == "failed"
            error = s.wipe.job(job_id).error
            assert error.startswith("io.mfpsecd.Wipe.MediumChanged")
            assert "'OTHER-DRIVE'" in error

    asyncio.run(scenario())


def test_a_cancel_is_certified_cancelled_and_a_second_job_is_refused(tmp_path: Path) -> None:
    settings = WipeSettings(poll_s=0.005)

    async def scenario() -> None:
        gate = asyncio.Event()

        async def hold(step: int) -> None:
            if step == 1:
                await gate.wait()

        async with stack(tmp_path, settings=settings, before_step=hold) as s:
            view = await s.wipe.begin("hdd0", 8, ENGINEER)
            with pytest.raises(MfpsecError) as info:
                await s.wipe.begin("hdd0", 1, ENGINEER)
            assert info.value.code is ErrorCode.WIPE_ALREADY_RUNNING
            waiter = asyncio.create_task(s.wipe.cancel(view.id, ENGINEER))
            await asyncio.sleep(0.05)
            gate.set()
            assert (await waiter).state == "cancelled"
            body = (await s.wipe.certificate(view.id)).certificate
            assert (body.result, body.verification.result) == ("cancelled", "not run")
            assert body.error.startswith("io.mfpsecd.Wipe.Cancelled")
            assert "Result             CANCELLED" in cert.render_text(
                await s.wipe.certificate(view.id)
            )
            again = await s.wipe.begin("hdd0", 1, ENGINEER)
            assert await finished(s.wipe, again.id) == COMPLETED

    asyncio.run(scenario())


def test_completed_means_completed_in_the_database(tmp_path: Path) -> None:
    """While the certificate is being signed the job is still running, for clients and
    for a new request alike; once a client sees it completed (or cancelled), a new job on
    the target is accepted at once. Before, the state flipped in memory before the row,
    and the new job hit the database's one-running-job-per-target index."""

    async def scenario() -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        sign = key_signer(key)
        signing, release = asyncio.Event(), asyncio.Event()

        async def slow_signer(digest: bytes) -> tuple[bytes, bytes] | None:
            signing.set()
            await release.wait()
            return await sign(digest)

        async with stack(tmp_path, key=key, signer=slow_signer) as s:
            view = await s.wipe.begin("hdd0", 1, ENGINEER)
            await signing.wait()
            try:
                assert s.wipe.job(view.id).state == "running"
                with pytest.raises(MfpsecError) as info:
                    await s.wipe.begin("hdd0", 1, ENGINEER)
                assert info.value.code is ErrorCode.WIPE_ALREADY_RUNNING
            finally:
                release.set()
            while s.wipe.job(view.id).state == "running":
                await asyncio.sleep(0)
            rows = await s.state.run(
                lambda c: c.execute(
                    "SELECT state FROM wipe_jobs WHERE id = ?", (view.id,)
                ).fetchall()
            )
            assert rows == [("completed",)]
            again = await s.wipe.begin("hdd0", 1, ENGINEER)  # at once, no waiting
            assert await finished(s.wipe, again.id) == COMPLETED

            # A cancel: seen as cancelled only once the row says so.
            third = await s.wipe.begin("hdd0", 8, ENGINEER)

            async def first_seen_cancelled():
                while s.wipe.job(third.id).state == "running":
                    await asyncio.sleep(0)
                return await s.state.run(
                    lambda c: c.execute(
                        "SELECT state FROM wipe_jobs WHERE id = ?", (third.id,)
                    ).fetchone()
                )

            watcher = asyncio.create_task(first_seen_cancelled())
            assert (await s.wipe.cancel(third.id, ENGINEER)).state == "cancelled"
            assert await watcher == ("cancelled",)
            fourth = await s.wipe.begin("hdd0", 1, ENGINEER)
            assert await finished(s.wipe, fourth.id) == COMPLETED

    asyncio.run(scenario())


def test_unlisted_unsanitizable_and_attached_targets_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            with pytest.raises(MfpsecError) as info:
                await s.wipe.begin("sda", 1, ENGINEER)
            assert info.value.code is ErrorCode.WIPE_TARGET_UNKNOWN
            with pytest.raises(MfpsecError) as info:
                await s.wipe.begin("sys0", 1, ENGINEER)
            assert info.value.code is ErrorCode.WIPE_TARGET_REFUSED
            assert "sanitizable" in info.value.params["reason"]
            with pytest.raises(ValueError, match="1-8"):
                await s.wipe.begin("hdd0", 9, ENGINEER)
            refused = await s.auditor.query(
                AuditQuery(types=frozenset({EventType.SANITIZE}), limit=0)
            )
            assert [r.outcome.value for r in refused] == ["failure"] * 3

    asyncio.run(scenario())


@pytest.mark.root
def test_an_image_attached_to_a_loop_device_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            out = subprocess.run(
                ["losetup", "--find", "--show", str(s.image("hdd0"))],
                check=True,
                capture_output=True,
                text=True,
            )
            try:
                with pytest.raises(MfpsecError) as info:
                    await s.wipe.begin("hdd0", 1, ENGINEER)
                assert info.value.params["reason"] == f"attached to {Path(out.stdout.strip()).name}"
            finally:
                subprocess.run(["losetup", "-d", out.stdout.strip()], check=True)

    asyncio.run(scenario())


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("F-1", "F-5")
def test_certificate_tampering_and_foreign_keys(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            view = await s.wipe.begin("hdd0", 1, ENGINEER)
            assert await finished(s.wipe, view.id) == COMPLETED
            good = cert.encode_document(await s.wipe.certificate(view.id))
            raw = msgspec.json.decode(good)
            for path, value in [
                (("certificate", "result"), "failed"),
                (("certificate", "media", "serial"), "OTHER"),
                (("certificate", "resumed"), 3),
                (("signature", "value"), "00" * 70),
            ]:
                doc = msgspec.json.decode(good)
                node = doc
                for k in path[:-1]:
                    node = node[k]
                node[path[-1]] = value
                with pytest.raises(MfpsecError) as info:
                    await s.wipe.verify_certificate(msgspec.json.encode(doc))
                assert info.value.code is ErrorCode.WIPE_CERTIFICATE_INVALID, path
            for bad in (b"", b"{}", good[:-5], good.replace(b'"format"', b'"formats"')):
                with pytest.raises(MfpsecError):
                    await s.wipe.verify_certificate(bad)
            # Re-signed by someone else's key: a valid signature, but not this device's.
            other = ec.generate_private_key(ec.SECP256R1())
            body = (await s.wipe.certificate(view.id)).certificate
            signed = await key_signer(other)(cert.digest(body))
            assert signed is not None
            sig, spki = signed
            pem = serialization.load_der_public_key(spki).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            raw["signature"] = {
                "alg": cert.SIGNATURE_ALG,
                "public_key": pem.decode(),
                "value": sig.hex(),
            }
            with pytest.raises(MfpsecError) as info:
                await s.wipe.verify_certificate(msgspec.json.encode(raw))
            assert info.value.code is ErrorCode.WIPE_CERTIFICATE_FOREIGN
            assert info.value.params["fingerprint"] == identity_keys.fingerprint(spki)
            # The genuine one names the identity key that signed it: the current one.
            _, signer = await s.wipe.verify_certificate(good)
            assert (signer.fingerprint, signer.replaced_at) == (
                identity_keys.fingerprint(public_key_der(s.key)),
                "",
            )
            # This device's own key embedded, the signature by another: not valid at all.
            raw["signature"]["public_key"] = (
                serialization.load_der_public_key(public_key_der(s.key))
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode()
            )
            with pytest.raises(MfpsecError) as info:
                await s.wipe.verify_certificate(msgspec.json.encode(raw))
            assert info.value.code is ErrorCode.WIPE_CERTIFICATE_INVALID
            assert "SANITIZATION CERTIFICATE" in cert.render_text(await s.wipe.certificate(view.id))

    asyncio.run(scenario())


@pytest.mark.sfr("FDP_RIP.1")
@pytest.mark.spec("E-3", "W-1", "W-2")
def test_job_data_is_overwritten_on_hdd_and_only_unlinked_on_flash(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            spool = tmp_path / "spool"
            spool.mkdir()
            for medium, expect in ((Medium.HDD, 0x61), (Medium.SSD, 0x42)):
                job = spool / f"job-{medium.value}.prn"
                job.write_bytes(b"\x42" * 100_003)
                keep = spool / f"inode-{medium.value}"
                os.link(job, keep)  # a second name keeps the inode readable after unlink
                done = await s.wipe.job_data.overwrite(job, medium)
                assert not job.exists()
                assert _constant(keep.read_bytes(), expect), medium
                assert ("Temporary data mode 2" in done) == (medium is Medium.HDD)
            with pytest.raises(MfpsecError) as info:
                await s.wipe.job_data.overwrite(spool / "missing", Medium.HDD)
            assert info.value.code is ErrorCode.WIPE_IO_ERROR

    asyncio.run(scenario())


def test_a_job_completed_while_the_key_chain_is_locked_is_signed_later(tmp_path: Path) -> None:
    """The disk is sanitized even if the identity key cannot sign at that moment; the
    certificate is then signed on first request, with the body the audit log recorded."""
    key = ec.generate_private_key(ec.SECP256R1())
    real = key_signer(key)
    locked = [True]
    signed_later: list[bytes] = []

    async def signer(digest: bytes) -> tuple[bytes, bytes] | None:
        if locked[0]:
            return None
        signed_later.append(digest)
        await asyncio.sleep(0.01)  # a TPM takes its time: another request may come in
        return await real(digest)

    async def scenario() -> None:
        async with stack(tmp_path, key=key, signer=signer) as s:
            view = await s.wipe.begin("hdd0", 1, ENGINEER)
            assert await finished(s.wipe, view.id) == COMPLETED
            unsigned = s.wipe.job(view.id)
            assert unsigned.certificate_digest == "" and "certificate not signed" in unsigned.error
            with pytest.raises(MfpsecError) as info:
                await s.wipe.certificate(view.id)
            assert info.value.code is ErrorCode.KEYS_UNAVAILABLE
            locked[0] = False
            # Two requests at once: one signature, the same document for both.
            doc, again = await asyncio.gather(
                s.wipe.certificate(view.id), s.wipe.certificate(view.id)
            )
            assert cert.encode_document(doc) == cert.encode_document(again)
            assert len(signed_later) == 1
            _, ours = await s.wipe.verify_certificate(cert.encode_document(doc))
            assert ours
            audited = (
                await s.auditor.query(AuditQuery(types=frozenset({EventType.SANITIZE}), limit=0))
            )[-1]
            assert audited.details["certificate_sha256"] == cert.digest(doc.certificate).hex()
            signed = s.wipe.job(view.id)
            assert (
                signed.error == ""
                and signed.certificate_digest == audited.details["certificate_sha256"]
            )

    asyncio.run(scenario())
