"""Sanitization jobs (SPEC W-2..W-5): one per target, planned here (the engine's overwrite
passes, or a media-aware purge with the device's own command), registered, then run as a
task by the overwrite runner or the purge runner. A job left `running` by a power cut
resumes from its checkpoint at the next start (W-5). Only a job whose every step passed
gets a certificate of success, signed with the device identity key (W-4); a failed or
cancelled one is certified as such. The audit log records the start, each step, the
result and the certificate's digest. Job data (W-1) is the job-data overwriter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import structlog

from mfpsecd.audit.checkpoints import Signer
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.state import StateStore
from mfpsecd.base.transfer import WorkerPool
from mfpsecd.keys.model.identity_history import KnownIdentity
from mfpsecd.wipe.certificates import Certifier, DeviceName, completed_result
from mfpsecd.wipe.job_data import JobDataOverwriter
from mfpsecd.wipe.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    RUNNING,
    BytePass,
    CheckStep,
    DeviceStep,
    Job,
    JobPlan,
    JobView,
    Pass,
    RandomPass,
    SampleStep,
    Step,
    VerifyStep,
    describe,
    insert_job,
    load_jobs,
    save_job,
    update_job,
)
from mfpsecd.wipe.medium_marker import new_marker
from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.model import purge_plan
from mfpsecd.wipe.model.overwrite_plan import (
    Choice,
    PassKind,
    ReadBack,
    discard_plan,
)
from mfpsecd.wipe.model.purge_plan import Plan, PurgeLevel, PurgeMethod
from mfpsecd.wipe.ports import (
    DiskInventory,
    MediaInfo,
    MediaProbe,
    MediaPurger,
    Overwriter,
    OverwriteTarget,
)
from mfpsecd.wipe.posture import DiskFacts
from mfpsecd.wipe.purge_record import (
    PurgeRecord,
    new_record,
)
from mfpsecd.wipe.purge_runner import PurgeRunner, io_error
from mfpsecd.wipe.runner import OverwriteRunner

log = structlog.get_logger("mfpsecd.wipe")
_T = TypeVar("_T")


@dataclass(frozen=True)
class WipeSettings:
    temporary_mode: int = 2  # W-1 mode for job data on HDD
    sync_every: int = 1 << 30  # durable checkpoint cadence: at most this much is redone
    poll_s: float = 0.25  # progress and checkpoint cadence while a step runs
    verify_fraction: float = 0.01  # share of the blocks a purge's read-back samples
    # A device command with no result after max(this, 3 x the device's own estimate) is
    # reported stuck and the purge FAILED, instead of being waited on forever.
    purge_bound_s: float = 3600.0
    device_poll_s: float = 5.0  # how often a background sanitize's status is read
    factory_mode: bool = False  # root without a session may sanitize, as "factory"


@dataclass(frozen=True)
class PurgePreview:
    """What a purge of a target would do, before it is started."""

    media: MediaInfo
    probe: MediaProbe
    plan: Plan


class WipeService:
    def __init__(
        self,
        state: StateStore,
        disks: DiskInventory,
        overwriter: Overwriter,
        auditor: Auditor,
        clock: Clock,
        *,
        signer: Signer,
        identities: Callable[[], Awaitable[list[KnownIdentity]]],
        device: DeviceName,
        tool: str,
        settings: WipeSettings | None = None,
        health: HealthRegistry | None = None,
        purger: MediaPurger | None = None,
    ) -> None:
        self._state = state
        # Its own threads: an overwrite runs for hours and never takes the threads of
        # the IP filter, authentication or status.
        self._pool = WorkerPool("wipe", 8)
        self._disks = disks
        self._overwriter = overwriter
        self._auditor = auditor
        self._clock = clock
        self._certifier = Certifier(signer, identities, device, tool)
        self.settings = settings or WipeSettings()
        self._jobs: dict[str, Job] = {}
        # Targets whose job is being set up: the checks before it is registered await the
        # probe and the database, and a second request must not slip in between.
        self._claimed: set[str] = set()
        self._health = health
        s = self.settings
        self._runner = OverwriteRunner(
            state, self._pool, auditor, sync_every=s.sync_every, poll_s=s.poll_s
        )
        self._purge = PurgeRunner(
            state,
            self._pool,
            auditor,
            clock,
            purger,
            poll_s=s.poll_s,
            bound_s=s.purge_bound_s,
            device_poll_s=s.device_poll_s,
        )
        self.job_data = JobDataOverwriter(overwriter, self._pool, s.temporary_mode)

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Load every job; resume those a power cut (or a stop) left running."""
        for job in await self._state.run(load_jobs):
            self._jobs[job.id] = job
            if job.state == RUNNING:
                job.resumed += 1
                await self._save(job)
                log.info("sanitization resuming", job=job.id, step=job.step, offset=job.offset)
                job.task = asyncio.create_task(self._run(job), name=f"wipe {job.id}")
        self._report()

    async def stop(self) -> None:
        """Stop running steps at their next chunk; the jobs stay `running` and resume at the
        next start from their checkpoint."""
        running = [j for j in self._jobs.values() if j.task is not None and not j.task.done()]
        for job in running:
            job.stopping = True
            if job.progress is not None:
                job.progress.cancel()
        for job in running:
            assert job.task is not None
            with contextlib.suppress(asyncio.CancelledError):
                await job.task

    # ---------------------------------------------------------------- queries

    def targets(self) -> list[MediaInfo]:
        return [self._disks.describe(i) for i in self._disks.ids()]

    def jobs(self) -> list[JobView]:
        return [j.view() for j in sorted(self._jobs.values(), key=lambda j: j.started)]

    def job(self, job_id: str) -> JobView:
        return self._get(job_id).view()

    def _get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise MfpsecError(ErrorCode.WIPE_JOB_NOT_FOUND, job=job_id)
        return job

    async def watch(self, job_id: str) -> AsyncIterator[JobView]:
        """The job's view now and at every change, until it has ended."""
        job = self._get(job_id)
        while True:
            changed = job.changed
            yield job.view()
            # Ended only once its task has recorded the result (audit, certificate).
            if job.task is None or job.task.done():
                return
            await changed.wait()

    # ---------------------------------------------------------------- sanitization

    def _usable(self, target: str) -> MediaInfo:
        info = self._disks.describe(target)
        if not info.sanitizable:
            raise MfpsecError(
                ErrorCode.WIPE_TARGET_REFUSED,
                target=target,
                reason="not listed as sanitizable in the board profile",
            )
        if info.in_use:
            raise MfpsecError(ErrorCode.WIPE_TARGET_REFUSED, target=target, reason=info.in_use)
        if info.size_bytes <= 0:
            raise MfpsecError(
                ErrorCode.WIPE_TARGET_REFUSED, target=target, reason="the target has no size"
            )
        return info

    async def begin(self, target: str, mode: int, operator: Subject) -> JobView:
        async with self._auditor.event(EventType.SANITIZE, operator, target) as ev:
            ev.details.update(phase="start", mode=mode)
            with self._claiming(target):
                info = self._usable(target)
                choice, plan = self._overwrite_plan(mode, info)
                job = self._new_job(target, mode, plan, info, operator)
                ev.object = job.id
                ev.details.update(target=target, plan=choice.plan.describe(), bytes=job.size)
                await self._register(job)
            ev.succeed()
        return self._launch(job)

    async def _register(self, job: Job) -> None:
        await self._state.run(lambda conn: insert_job(conn, job))
        self._jobs[job.id] = job

    def _launch(self, job: Job) -> JobView:
        job.task = asyncio.create_task(self._run(job), name=f"wipe {job.id}")
        self._report()
        return job.view()

    # ---------------------------------------------------------------- media-aware purge

    async def plan_purge(
        self, target: str, level: PurgeLevel, method: PurgeMethod | None = None
    ) -> PurgePreview:
        """Ask the device what it supports and choose the method, or explain the one
        named (nothing is written)."""
        info = self._usable(target)
        try:
            probe = await self._pool.call(self._purge.device(target).probe, info)
        except (OSError, ValueError) as exc:
            raise io_error(target, "identify", exc) from None
        caps = probe.capabilities
        return PurgePreview(
            info,
            probe,
            purge_plan.plan(caps, level)
            if method is None
            else purge_plan.named(caps, level, method),
        )

    async def disk_facts(self) -> list[DiskFacts]:
        """Every disk of the board as it describes itself (the posture's storage lock)."""
        out = []
        for disk in self._disks.ids():
            try:
                info = self._disks.describe(disk)
                probe = await self._pool.call(self._purge.device(disk).probe, info)
            except MfpsecError as exc:
                out.append(DiskFacts(disk, None, exc.code.wire_name))
            except (OSError, ValueError) as exc:
                out.append(DiskFacts(disk, None, str(exc)))
            else:
                out.append(DiskFacts(disk, probe))
        return out

    async def begin_purge(
        self,
        target: str,
        level: PurgeLevel,
        operator: Subject,
        *,
        mode: int = 1,
        confirm: bool = False,
        verify_all: bool = False,
        method: PurgeMethod | None = None,
    ) -> JobView:
        """SP 800-88 Clear or Purge with the strongest method the device supports; the
        engine's overwrite (in `mode` on an HDD) where it supports none."""
        async with self._auditor.event(EventType.SANITIZE, operator, target) as ev:
            ev.details.update(phase="start", level=level.name.lower())
            with self._claiming(target):
                preview = await self.plan_purge(target, level, method)
                chosen, info = preview.plan, preview.media
                ev.details.update(
                    method=chosen.method.value,
                    shortfall=chosen.shortfall,
                    whole_device=chosen.whole_device,
                )
                confirmed_by = self._purge_allowed(target, preview, operator, confirm)
                rec = new_record(
                    preview.probe,
                    chosen,
                    info,
                    confirmed_by=confirmed_by,
                    fraction=1.0 if verify_all else self.settings.verify_fraction,
                )
                plan = self._purge_plan(rec, chosen, mode, info)
                job = self._new_job(target, mode, plan, info, operator)
                ev.object = job.id
                ev.details.update(
                    target=target, bytes=job.size, steps=",".join(describe(x) for x in plan.steps)
                )
                await self._register(job)
            ev.succeed()
        return self._launch(job)

    @staticmethod
    def _purge_allowed(target: str, preview: PurgePreview, operator: Subject, confirm: bool) -> str:
        """Refuse what the plan may not do here; → who confirmed it ("" if not needed)."""
        chosen = preview.plan
        if chosen.whole_device and preview.probe.others_in_use:
            # No confirmation covers erasing a namespace the system runs from.
            raise MfpsecError(
                ErrorCode.WIPE_TARGET_REFUSED,
                target=target,
                reason=(
                    f"{chosen.method.value} erases the whole device, and "
                    f"{preview.probe.others_in_use}"
                ),
            )
        if not chosen.needs_confirmation:
            return ""
        why = chosen.shortfall or (
            "the method erases the whole device (every namespace), not only this target"
        )
        if operator.role != "service" or not confirm:
            raise MfpsecError(ErrorCode.WIPE_CONFIRMATION_REQUIRED, target=target, reason=why)
        return operator.user

    def _purge_plan(self, rec: PurgeRecord, chosen: Plan, mode: int, info: MediaInfo) -> JobPlan:
        if not rec.device_method:
            return self._overwrite_plan(mode, info, rec)[1]
        steps: list[Step] = [SampleStep(), DeviceStep(rec.method), CheckStep()]
        return JobPlan(
            f"NIST SP 800-88 Rev.1 {rec.achieves}: {rec.method}",
            chosen.shortfall or f"the strongest method {rec.transport} reports",
            steps,
            rec,
        )

    def _overwrite_plan(
        self, mode: int, info: MediaInfo, purge: PurgeRecord | None = None
    ) -> tuple[Choice, JobPlan]:
        """The engine's passes for the mode on this medium, then the read-back (every
        discard plan verifies its last pass, W-5), and the medium's marker."""
        choice = discard_plan(mode, info.medium)
        steps: list[Step] = [self._step(p.kind, p.byte) for p in choice.plan.passes]
        if choice.plan.verification is ReadBack.LAST_PASS:
            steps.append(VerifyStep())
        marker = new_marker(info.size_bytes, self._overwriter.new_key())
        return choice, JobPlan(choice.plan.standard, choice.reason, steps, purge, marker)

    def _not_running(self, target: str) -> None:
        for job in self._jobs.values():
            if job.target == target and job.state == RUNNING:
                raise MfpsecError(ErrorCode.WIPE_ALREADY_RUNNING, target=target, job=job.id)

    @contextlib.contextmanager
    def _claiming(self, target: str) -> Iterator[None]:
        """Hold the target while its new job is checked and registered."""
        self._not_running(target)
        if target in self._claimed:
            raise MfpsecError(ErrorCode.WIPE_ALREADY_RUNNING, target=target, job="(being set up)")
        self._claimed.add(target)
        try:
            yield
        finally:
            self._claimed.discard(target)

    def _new_job(
        self, target: str, mode: int, plan: JobPlan, info: MediaInfo, operator: Subject
    ) -> Job:
        now = self._clock.now()
        return Job(
            id=f"{target}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}",
            target=target,
            mode=mode,
            plan=plan,
            media=info,
            operator=operator,
            size=info.size_bytes,
            started=rfc3339(self._clock),
        )

    def _report(self) -> None:
        """The component line in the daemon status: what is running, or how the last ended."""
        if self._health is None:
            return
        running = [j.id for j in self._jobs.values() if j.state == RUNNING]
        ended = sorted(
            (j for j in self._jobs.values() if j.state != RUNNING), key=lambda j: j.ended
        )
        detail = f"{len(self._disks.ids())} disk(s); "
        if running:
            detail += f"running: {', '.join(running)}"
        elif ended:
            detail += f"last: {ended[-1].id} {ended[-1].state}"
        else:
            detail += "no sanitization yet"
        stuck = (
            bool(ended)
            and not running
            and ended[-1].error_code == ErrorCode.WIPE_DEVICE_STUCK.wire_name
        )
        # A device that stopped answering stays flagged until a sanitization succeeds.
        self._health.set(
            "wipe",
            HealthState.DEGRADED if stuck else HealthState.OK,
            detail + (" (the device gave no result: see the job)" if stuck else ""),
        )

    def _step(self, kind: PassKind, byte: int) -> Pass:
        if kind is PassKind.RANDOM:
            return RandomPass(self._overwriter.new_key().hex())
        return BytePass(byte)

    async def cancel(self, job_id: str, subject: Subject) -> JobView:
        job = self._get(job_id)
        async with self._auditor.event(EventType.SANITIZE, subject, job.id) as ev:
            ev.details["phase"] = "cancel"
            if job.state != RUNNING:
                return job.view()  # already over: nothing to cancel
            job.cancelling = True
            if job.progress is not None:
                job.progress.cancel()
            if job.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task
            ev.succeed()
        return job.view()

    async def _run(self, job: Job) -> None:
        target: OverwriteTarget | None = None
        try:
            info = self._usable(job.target)
            if info.size_bytes != job.size:
                raise MfpsecError(
                    ErrorCode.WIPE_TARGET_REFUSED,
                    target=job.target,
                    reason=f"size changed from {job.size} to {info.size_bytes}",
                )
            self._same_drive(job, info)
            device = job.purge is not None and job.purge.device_method
            if not device:
                target = await self._pool.call(self._overwriter.open, info)
                await self._runner.prove_medium(job, target)
            while job.step < len(job.plan.steps):
                if job.stopping or job.cancelling:
                    raise MfpsecError(ErrorCode.WIPE_CANCELLED, job=job.id)
                if target is None:
                    await self._purge.run_step(job, info)
                else:
                    await self._runner.run_step(job, target)
            if target is not None:
                await self._runner.seal_marker(job, target)
            await self._finish(job)
        except MfpsecError as exc:
            if job.stopping and exc.code is ErrorCode.WIPE_CANCELLED:
                log.info(
                    "sanitization paused for shutdown", job=job.id, step=job.step, offset=job.offset
                )
                return
            await self._fail(job, exc)
        except Exception as exc:
            log.exception("sanitization failed unexpectedly", job=job.id)
            await self._fail(job, MfpsecError(ErrorCode.INTERNAL, str(exc)))
        finally:
            job.progress = None
            if target is not None:
                target.close()
            self._report()
            job.notify()

    # ---------------------------------------------------------------- same medium

    def _same_drive(self, job: Job, info: MediaInfo) -> None:
        """The drive answers with the model and serial number the job started with."""
        was, now = (job.media.model, job.media.serial), (info.model, info.serial)
        if was != now:
            raise MfpsecError(
                ErrorCode.WIPE_MEDIUM_CHANGED,
                target=job.target,
                reason=f"the job started on model {was[0]!r}, serial {was[1]!r}; the target "
                f"now answers model {now[0]!r}, serial {now[1]!r}",
            )

    async def _finish(self, job: Job) -> None:
        job.ended = rfc3339(self._clock)
        if job.purge is not None and not job.purge.device_method:
            job.purge.verified = True  # the engine's read-back of every byte passed
        result = completed_result(job)
        signed = await self._certify_now(job, result)
        if not signed:
            # The target IS sanitized; only the proof could not be signed now.
            job.error = "certificate not signed: the device identity key is unavailable"
        await self._end(job, COMPLETED)
        await self._auditor.record(
            EventType.SANITIZE,
            Outcome.SUCCESS,
            job.operator,
            job.id,
            phase="result",
            result=result,
            **(
                {"certificate_sha256": signed}
                if signed
                else {"certificate": "signed on first request"}
            ),
        )
        log.info("sanitization completed", job=job.id, result=result)

    async def _fail(self, job: Job, exc: MfpsecError) -> None:
        if job.state != RUNNING:
            # It ended (its row says so) and something after that failed, e.g. its audit
            # record: the result stands, nothing is certified a second time.
            log.error("sanitization_after_end_failed", job=job.id, error=exc.code.wire_name)
            return
        cancelled = exc.code is ErrorCode.WIPE_CANCELLED or job.cancelling
        ending = CANCELLED if cancelled else FAILED
        job.ended = rfc3339(self._clock)
        job.error_code = exc.code.wire_name
        job.error_params = {k: str(v) for k, v in exc.params.items() if k != "job"}
        job.error = job.error_code + "".join(f" {k}={v}" for k, v in job.error_params.items())
        # Certified as FAILED or CANCELLED, with why: the record a service engineer and an
        # auditor need (for a purge the read-back caught: the device's report and the
        # finding), and never mistakable for a success.
        digest = await self._certify_now(job, ending)
        await self._end(job, ending)
        await self._auditor.record(
            EventType.SANITIZE,
            Outcome.FAILURE,
            job.operator,
            job.id,
            phase="result",
            result=job.state,
            error=job.error,
            **({"certificate_sha256": digest} if digest else {}),
        )
        log.warning("sanitization did not complete", job=job.id, state=job.state, error=job.error)

    async def _save(self, job: Job) -> None:
        await save_job(self._state, job)

    async def _end(self, job: Job, state: str) -> None:
        """The row first, then what clients see: a job reported completed is completed in
        the database, so a new job on its target is accepted at once."""
        await self._state.run(lambda conn: update_job(conn, job, state))
        job.state = state

    # ---------------------------------------------------------------- certificates

    async def _certify_now(self, job: Job, result: str) -> str:
        """Sign the job's certificate now. → its body's SHA-256, "" when the identity key
        cannot sign (the key chain is locked): then it is signed on first request, with
        the key the device holds by then."""
        try:
            job.certificate, body = await self._certifier.issue(job, result)
        except Exception as exc:  # the job's end must be recorded whatever failed here
            log.warning("certificate_not_signed", job=job.id, error=str(exc))
            return ""
        return cert.digest(body).hex()

    async def verify_certificate(
        self, data: bytes
    ) -> tuple[cert.CertificateDocument, KnownIdentity]:
        """Against this device's identity keys only (see Certifier.verify)."""
        return await self._certifier.verify(data)

    async def certificate(self, job_id: str) -> cert.CertificateDocument:
        job = self._get(job_id)
        async with job.signing:
            if job.state != RUNNING and not job.certificate:
                await self._certify_late(job)
        if not job.certificate:
            raise MfpsecError(
                ErrorCode.WIPE_JOB_NOT_FOUND,
                f"sanitization {job_id} has no certificate: it is {job.state}",
                job=job_id,
            )
        return cert.decode_document(job.certificate)

    async def _certify_late(self, job: Job) -> None:
        """Ended while the identity key could not sign (key chain locked): the body is
        fixed by the job's record, so it is signed now, as it would have been."""
        result = completed_result(job) if job.state == COMPLETED else job.state
        job.certificate, body = await self._certifier.issue(job, result)
        if job.state == COMPLETED:
            job.error = ""
        await self._save(job)
        await self._auditor.record(
            EventType.SANITIZE,
            Outcome.SUCCESS,
            DAEMON,
            job.id,
            phase="certificate",
            result=result,
            certificate_sha256=cert.digest(body).hex(),
        )
