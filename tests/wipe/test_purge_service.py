"""Media-aware purge through the wipe service (SPEC W-3..W-5, issue 10): the plan from the
device's own Identify data, the service engineer's confirmation, verify after the device
command (a lying device is a FAILED purge with a signed certificate saying so), the
watchdog on a device that never answers, and a power cut during a format (re-issued) or
a background sanitize (followed, not re-issued). Image-file targets; the device behaviour
comes from tests/support/purge_double.py, the real devices from the QEMU suite."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.service import AuditQuery
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthState
from mfpsecd.wipe.jobs import COMPLETED, FAILED
from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.model.purge_plan import PurgeLevel
from mfpsecd.wipe.service import WipeSettings
from tests.support.purge_double import ImagePurger
from tests.support.wipe_stack import ENGINEER, SIZE, Stack, finished, stack

ADMIN = Subject(origin="cli", user="admin", role="administrator")
FAST = WipeSettings(poll_s=0.01, device_poll_s=0.01, verify_fraction=0.05, purge_bound_s=600.0)


def _old_data(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


async def _document(s: Stack, job_id: str) -> cert.CertificateDocument:
    doc = await s.wipe.certificate(job_id)
    verified, ours = await s.wipe.verify_certificate(cert.encode_document(doc))
    assert ours and verified == doc
    return doc


def test_an_image_has_no_purge_command_so_only_a_confirmed_overwrite_runs(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, settings=FAST) as s:
            preview = await s.wipe.plan_purge("ssd0", PurgeLevel.PURGE)
            assert preview.plan.method.value == "overwrite"
            assert "no purge method" in preview.plan.shortfall
            assert preview.plan.needs_confirmation
            # Falling short of Purge: not for an administrator, not without confirm.
            for who, confirm in ((ADMIN, True), (ENGINEER, False)):
                with pytest.raises(MfpsecError) as info:
                    await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, who, confirm=confirm)
                assert info.value.code is ErrorCode.WIPE_CONFIRMATION_REQUIRED
            _old_data(s.image("ssd0"))
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ENGINEER, confirm=True)
            assert (view.method, view.level, view.steps) == (
                "overwrite",
                "purge",
                ["0x00", "verify"],
            )
            assert await finished(s.wipe, view.id) == COMPLETED
            assert s.image("ssd0").read_bytes() == bytes(SIZE)
            c = (await _document(s, view.id)).certificate
            # A purge asked for that reached only Clear says so, never plain success.
            assert c.purge is not None and c.result == "clear-achieved"
            assert (c.method.category, c.method.technique) == ("clear", "overwrite")
            assert c.method.ieee2883 == "Clear: overwrite"
            assert "Result             CLEAR ACHIEVED (PURGE REQUESTED)" in cert.render_text(
                await _document(s, view.id)
            )
            assert c.purge.confirmed_by == "ce1" and "no purge method" in c.purge.shortfall
            assert c.purge.evidence.transport == "file"
            assert {k.method for k in c.purge.skipped} >= {
                "nvme-sanitize-crypto",
                "ata-security-erase",
            }
            assert c.verification.result == "passed"
            # Clear is what an overwrite reaches: no confirmation needed for it.
            clear = await s.wipe.begin_purge("hdd0", PurgeLevel.CLEAR, ADMIN, mode=2)
            assert clear.steps == ["random", "random", "0x00", "verify"]
            assert await finished(s.wipe, clear.id) == COMPLETED

    asyncio.run(scenario())


def test_a_format_that_erases_passes_and_one_that_lies_is_a_failed_purge(tmp_path: Path) -> None:
    async def scenario() -> None:
        device = ImagePurger("erase")
        async with stack(tmp_path, settings=FAST, purger=device) as s:
            _old_data(s.image("ssd0"))
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN)
            assert view.steps == ["sample", "nvme-format-erase", "check"]
            assert await finished(s.wipe, view.id) == COMPLETED
            c = (await _document(s, view.id)).certificate
            assert c.purge is not None
            assert (c.method.category, c.method.technique) == ("purge", "nvme-format-erase")
            assert c.purge.device_said == ["nvme-format-erase: success"]
            assert len(bytes.fromhex(c.purge.evidence.identify["nvme-identify-controller"])) == 4096
            assert any(f.startswith("OACS 0x") for f in c.purge.evidence.facts)
            assert c.verification.result == "passed" and "as expected" in c.verification.method
            text = cert.render_text(await s.wipe.certificate(view.id))
            assert "Purge plan" in text and "Method           nvme-format-erase" in text

            device.behaviour = "lie"
            _old_data(s.image("ssd0"))
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN)
            assert await finished(s.wipe, view.id) == FAILED
            job = s.wipe.job(view.id)
            assert job.error.startswith(ErrorCode.WIPE_VERIFY_FAILED.wire_name)
            doc = await _document(s, view.id)
            assert doc.certificate.result == "failed"
            assert doc.certificate.verification.result == "failed"
            assert doc.certificate.purge is not None
            assert doc.certificate.purge.device_said == ["nvme-format-erase: success"]
            assert "Result             FAILED" in cert.render_text(doc)
            results = [
                r
                for r in await s.auditor.query(AuditQuery(types=frozenset({EventType.SANITIZE})))
                if r.details.get("phase") == "result"
            ]
            assert results[-1].details["certificate_sha256"] == job.certificate_digest

    asyncio.run(scenario())


def test_a_crypto_erase_is_judged_against_what_the_blocks_held(tmp_path: Path) -> None:
    async def scenario() -> None:
        device = ImagePurger("crypto", sanicap=0x1)
        async with stack(tmp_path, settings=FAST, purger=device) as s:
            _old_data(s.image("ssd0"))
            preview = await s.wipe.plan_purge("ssd0", PurgeLevel.PURGE)
            assert preview.plan.method.value == "nvme-sanitize-crypto"
            assert preview.plan.whole_device and preview.plan.needs_confirmation
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ENGINEER, confirm=True)
            assert await finished(s.wipe, view.id) == COMPLETED
            c = (await _document(s, view.id)).certificate
            assert c.purge is not None and c.purge.expect == "changed"
            assert c.purge.device_said[0] == "Sanitize: started"
            assert c.purge.device_said[-1] == "Sanitize Status: completed"

            # The system runs from another namespace of the controller: never.
            device.others_in_use = "nvme0n2p2 is mounted at /"
            with pytest.raises(MfpsecError) as info:
                await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ENGINEER, confirm=True)
            assert info.value.code is ErrorCode.WIPE_TARGET_REFUSED
            assert info.value.params["reason"] == (
                "nvme-sanitize-crypto erases the whole device, and nvme0n2p2 is mounted at /"
            )
            device.others_in_use = ""

            device.behaviour = "lie"
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ENGINEER, confirm=True)
            assert await finished(s.wipe, view.id) == FAILED
            assert (
                "still holds what it held before"
                in (await _document(s, view.id)).certificate.verification.method
            )

    asyncio.run(scenario())


def test_a_device_that_never_answers_fails_the_purge_after_its_bound(tmp_path: Path) -> None:
    async def scenario() -> None:
        device = ImagePurger("hang")
        try:
            async with stack(tmp_path, settings=FAST, purger=device) as s:
                view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN)
                await asyncio.to_thread(device.entered.wait, 10)
                await s.clock.advance(599)
                assert s.wipe.job(view.id).state == "running"
                await s.clock.advance(2)
                assert await finished(s.wipe, view.id) == FAILED
                job = s.wipe.job(view.id)
                assert job.error == (
                    f"{ErrorCode.WIPE_DEVICE_STUCK.wire_name} target=ssd0 seconds=601"
                )
                component = s.health.get("wipe")
                assert component is not None and component.state is HealthState.DEGRADED
                # Certified FAILED, with why; the read-back never ran.
                body = (await s.wipe.certificate(view.id)).certificate
                assert (body.result, body.error) == ("failed", job.error)
                assert body.verification.result != "passed"
        finally:
            device.release.set()

    asyncio.run(scenario())


def test_a_power_cut_reissues_a_format_and_follows_a_sanitize(tmp_path: Path) -> None:
    async def scenario() -> None:
        device = ImagePurger("hang")
        async with stack(tmp_path, settings=FAST, purger=device) as s:
            _old_data(s.image("ssd0"))
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN)
            await asyncio.to_thread(device.entered.wait, 10)
        # The daemon went down mid-command; the device lost power with it.
        device.release.set()
        _old_data(s.image("ssd0"))
        device.behaviour = "erase"
        async with stack(tmp_path, settings=FAST, purger=device) as s:
            assert await finished(s.wipe, view.id) == COMPLETED
            assert device.issued == ["nvme-format-erase"] * 2
            c = (await _document(s, view.id)).certificate
            assert c.resumed == 1 and len(c.purge.device_said) == 1  # type: ignore[union-attr]

        sanitizing = ImagePurger("erase", sanicap=0x2, sanitize_polls=10_000)
        async with stack(tmp_path, settings=FAST, purger=sanitizing) as s:
            _old_data(s.image("ssd0"))
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ENGINEER, confirm=True)
            while s.wipe.job(view.id).position == 0:
                await asyncio.sleep(0.01)
        # Back up while the controller carries on with the sanitize by itself.
        sanitizing.sanitize_polls = sanitizing._sanitizing = 2
        async with stack(tmp_path, settings=FAST, purger=sanitizing) as s:
            assert await finished(s.wipe, view.id) == COMPLETED
            assert sanitizing.issued == ["nvme-sanitize-block"]  # followed, not re-issued
            said = (await _document(s, view.id)).certificate.purge.device_said  # type: ignore[union-attr]
            assert said[1].startswith("after restart: Sanitize Status: in progress")
            assert s.image("ssd0").read_bytes() == bytes(SIZE)

    asyncio.run(scenario())


def test_a_sanitize_the_device_reports_failed_fails_the_purge(tmp_path: Path) -> None:
    """The device's word never makes a purge succeed, but it does make one fail."""

    async def scenario() -> None:
        device = ImagePurger("fail", sanicap=0x2)
        async with stack(tmp_path, settings=FAST, purger=device) as s:
            _old_data(s.image("ssd0"))
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ENGINEER, confirm=True)
            assert await finished(s.wipe, view.id) == FAILED
            job = s.wipe.job(view.id)
            assert job.error.startswith(ErrorCode.WIPE_IO_ERROR.wire_name), job.error
            assert "the device reports that it failed (Sanitize Status: failed)" in job.error

    asyncio.run(scenario())


def test_two_requests_for_one_target_start_one_job(tmp_path: Path) -> None:
    """The set-up awaits the device's Identify data and the database: a second request
    arriving meanwhile (the panel and the CLI, a double click) is refused, not run twice."""

    async def scenario() -> None:
        device = ImagePurger("erase")
        async with stack(tmp_path, settings=FAST, purger=device) as s:
            _old_data(s.image("ssd0"))
            results = await asyncio.gather(
                s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN),
                s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN),
                return_exceptions=True,
            )
            views = [r for r in results if not isinstance(r, BaseException)]
            refused = [r for r in results if isinstance(r, MfpsecError)]
            assert len(views) == 1 and len(refused) == 1, results
            assert refused[0].code is ErrorCode.WIPE_ALREADY_RUNNING
            assert await finished(s.wipe, views[0].id) == COMPLETED
            assert device.issued == ["nvme-format-erase"]
            # Refused set-ups leave nothing claimed.
            again = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN)
            assert await finished(s.wipe, again.id) == COMPLETED

    asyncio.run(scenario())


def test_a_device_that_cannot_be_identified_is_a_typed_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        device = ImagePurger("erase", probe_error=PermissionError(13, "Permission denied"))
        async with stack(tmp_path, settings=FAST, purger=device) as s:
            with pytest.raises(MfpsecError) as info:
                await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN)
            assert info.value.code is ErrorCode.WIPE_IO_ERROR
            assert info.value.params["reason"] == "identify: [Errno 13] Permission denied"
            device.probe_error = None
            view = await s.wipe.begin_purge("ssd0", PurgeLevel.PURGE, ADMIN)  # not left claimed
            assert await finished(s.wipe, view.id) == COMPLETED

    asyncio.run(scenario())
