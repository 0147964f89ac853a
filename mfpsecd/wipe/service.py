"""Overwrite and sanitization (SPEC W-1, W-2, W-4, W-5).

- Job data (W-1): the job store hands over a finished job's file; on HDD it is overwritten
  with the temporary-data mode and unlinked, on flash it is only unlinked (an overwrite
  does not reach the cells that held it: the job store's crypto-erase is what protects it).
- Sanitization jobs (W-2): one per target, run as a task; each step (a pass, then the
  read-back) runs in the native engine in a worker thread while this task polls its
  progress, persists the durable checkpoint and tells watchers. A job left `running` by a
  power cut resumes from its checkpoint at the next start (W-5). Only a job whose every
  pass was written and whose read-back matched gets a certificate, signed with the device
  identity key (W-4); the audit log records the start, each pass, the result and the
  certificate's digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.service import Auditor, Signer
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.state import StateStore
from mfpsecd.base.transfer import WorkerPool
from mfpsecd.keys.model.identity_history import KnownIdentity
from mfpsecd.wipe.certificates import Certifier, DeviceName, completed_result
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
    StepKind,
    VerifyStep,
    describe,
    insert_job,
    last_pass,
    load_jobs,
    step_spec,
    update_job,
)
from mfpsecd.wipe.medium_marker import MarkerState, MediumMarker, new_marker, passes_end
from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.model import purge_plan, purge_verify
from mfpsecd.wipe.model.overwrite_plan import (
    Choice,
    Medium,
    OverwritePlan,
    PassKind,
    ReadBack,
    discard_plan,
    temporary_plan,
)
from mfpsecd.wipe.model.purge_plan import Expect, Plan, PurgeLevel, PurgeMethod
from mfpsecd.wipe.ports import (
    DeviceProgress,
    DiskInventory,
    MediaInfo,
    MediaProbe,
    MediaPurger,
    Overwriter,
    OverwriteTarget,
    PassSpec,
)
from mfpsecd.wipe.purge_record import (
    PurgeRecord,
    blocks_before,
    digests_before,
    judge,
    new_record,
    positions,
)

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
        self._purger = purger
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

    def _purger_for(self, target: str) -> MediaPurger:
        if self._purger is None:
            raise MfpsecError(
                ErrorCode.WIPE_TARGET_REFUSED,
                target=target,
                reason="this daemon has no media purge backend",
            )
        return self._purger

    async def plan_purge(
        self, target: str, level: PurgeLevel, method: PurgeMethod | None = None
    ) -> PurgePreview:
        """Ask the device what it supports and choose the method, or explain the one
        named (nothing is written)."""
        info = self._usable(target)
        try:
            probe = await self._pool.call(self._purger_for(target).probe, info)
        except (OSError, ValueError) as exc:
            raise _io_error(target, "identify", exc) from None
        caps = probe.capabilities
        return PurgePreview(
            info,
            probe,
            purge_plan.plan(caps, level)
            if method is None
            else purge_plan.named(caps, level, method),
        )

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
                await self._prove_medium(job, target)
            while job.step < len(job.plan.steps):
                if job.stopping or job.cancelling:
                    raise MfpsecError(ErrorCode.WIPE_CANCELLED, job=job.id)
                if target is None:
                    await self._run_purge_step(job, info)
                else:
                    await self._run_step(job, target)
            if target is not None:
                await self._seal_marker(job, target)
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

    async def _prove_medium(self, job: Job, target: OverwriteTarget) -> None:
        """Before any pass: write the marker on a fresh job, else read it back."""
        marker = job.plan.marker
        if marker is None:
            return
        if marker.is_(MarkerState.PENDING):
            # Nothing was written yet (not even the marker, if a power cut came first):
            # the medium now in place is the one this job sanitizes.
            await self._pool.call(
                target.write_pass, marker.offset, job.size, marker.spec, target.new_progress(), 0
            )
            marker.state = MarkerState.WRITTEN.value
            await self._save(job)
        elif marker.is_(MarkerState.WRITTEN):
            await self._check_marker(job, target, marker)
            if job.resumed:
                await self._auditor.record(
                    EventType.SANITIZE,
                    Outcome.SUCCESS,
                    DAEMON,
                    job.id,
                    phase="resume",
                    step=job.step + 1,
                    steps=len(job.plan.steps),
                    offset=job.offset,
                    resumed=job.resumed,
                    medium="the marker written at the start is there",
                )

    async def _check_marker(self, job: Job, target: OverwriteTarget, marker: MediumMarker) -> None:
        try:
            await self._pool.call(
                target.verify, marker.offset, job.size, marker.spec, target.new_progress()
            )
        except MfpsecError as exc:
            if exc.code is not ErrorCode.WIPE_VERIFY_FAILED:
                raise
            raise MfpsecError(
                ErrorCode.WIPE_MEDIUM_CHANGED,
                target=job.target,
                reason=f"the marker this job wrote at offset {marker.offset} is not there: "
                "another medium was put in place, or it was written to",
            ) from None

    async def _seal_marker(self, job: Job, target: OverwriteTarget) -> None:
        """The marker, proven once more, gets every pass in turn and the read-back."""
        marker = job.plan.marker
        if marker is None or marker.is_(MarkerState.SEALED):
            return
        if marker.is_(MarkerState.WRITTEN):
            await self._check_marker(job, target, marker)
            marker.state = MarkerState.SEALING.value
            await self._save(job)
        passes = [s for s in job.plan.steps if s.kind is not StepKind.VERIFY]
        for step in passes:
            await self._pool.call(
                target.write_pass,
                marker.offset,
                job.size,
                step_spec(step),
                target.new_progress(),
                0,
            )
        await self._pool.call(
            target.verify,
            marker.offset,
            job.size,
            step_spec(last_pass(job.plan)),
            target.new_progress(),
        )
        marker.state = MarkerState.SEALED.value
        await self._save(job)

    async def _run_step(self, job: Job, target: OverwriteTarget) -> None:
        step = job.plan.steps[job.step]
        verifying = step.kind is StepKind.VERIFY
        spec = step_spec(last_pass(job.plan) if verifying else step)
        progress = target.new_progress()
        job.progress = progress
        start, end = job.offset, passes_end(job.plan.marker, job.size)
        if verifying:
            work = self._pool.call(target.verify, start, end, spec, progress)
        else:
            work = self._pool.call(
                target.write_pass, start, end, spec, progress, self.settings.sync_every
            )
        fut = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=self.settings.poll_s)
            # A read-back needs no durability; a pass is only as far as it was flushed.
            mark = progress.position if verifying else progress.durable
            if mark > job.offset and not job.cancelling:
                job.offset = mark
                await self._save(job)
            job.notify()
            if done:
                break
        fut.result()  # the step's MfpsecError, if any
        await self._auditor.record(
            EventType.SANITIZE,
            Outcome.SUCCESS,
            DAEMON,
            job.id,
            phase="verify" if verifying else "pass",
            step=job.step + 1,
            steps=len(job.plan.steps),
            pattern=describe(step),
            buffered=progress.buffered,
        )
        job.step += 1
        job.offset = 0
        await self._save(job)

    async def _run_purge_step(self, job: Job, info: MediaInfo) -> None:
        rec = job.purge
        assert rec is not None
        step = job.plan.steps[job.step]
        device = self._purger_for(job.target)
        details: dict[str, str | int] = {}
        if step.kind is StepKind.SAMPLE:
            if rec.expect == Expect.CHANGED.value:
                rec.before = await self._read_back(
                    device, info, rec, job.size, lambda _, blocks: digests_before(blocks)
                )
                details["blocks"] = blocks_before(rec)
            else:
                details["blocks"] = len(await self._pool.call(positions, rec, job.size))
        elif step.kind is StepKind.DEVICE:
            await self._device_command(job, info, device, rec)
            details["device_said"] = rec.device_said[-1]
        else:
            finding = await self._read_back(
                device, info, rec, job.size, lambda where, blocks: judge(rec, where, blocks)
            )
            rec.verified = finding.ok
            rec.finding = _finding_text(finding)
            await self._save(job)
            if not finding.ok:
                raise MfpsecError(
                    ErrorCode.WIPE_VERIFY_FAILED, target=job.target, offset=finding.offset
                )
            details["finding"] = rec.finding
        await self._auditor.record(
            EventType.SANITIZE,
            Outcome.SUCCESS,
            DAEMON,
            job.id,
            phase="verify" if step.kind is StepKind.CHECK else step.kind.value,
            step=job.step + 1,
            steps=len(job.plan.steps),
            **details,
        )
        job.step += 1
        job.offset = 0
        await self._save(job)

    async def _read_back(
        self,
        device: MediaPurger,
        info: MediaInfo,
        rec: PurgeRecord,
        size: int,
        use: Callable[[Sequence[int], Iterable[tuple[int, bytes]]], _T],
    ) -> _T:
        """`use` applied, in a thread, to the record's sample blocks as the device returns
        them: one block at a time, as a large disk has millions of them."""

        def read() -> _T:
            where = positions(rec, size)
            return use(where, device.read_blocks(info, where, rec.block))

        try:
            return await self._pool.call(read)
        except OSError as exc:
            raise _io_error(info.id, "read-back", exc) from None

    async def _device_command(
        self, job: Job, info: MediaInfo, device: MediaPurger, rec: PurgeRecord
    ) -> None:
        """Issue the command (again after a power cut, unless a background sanitize is
        still running in the device or finished there), then wait for it under the
        watchdog's bound: a device that never answers fails the purge, loudly."""
        method = PurgeMethod(rec.method)
        bound = max(self.settings.purge_bound_s, 3 * rec.estimate_s)
        start = self._clock.monotonic()
        reissue = True
        if rec.issued and method.background:
            status = await self._status(job, device, info, method)
            # Running or done in the device: follow it. Failed, or never started: again.
            reissue = status is None or status.state in ("failed", "idle")
            rec.device_said.append(f"after restart: {status.said if status else 'no status'}")
        if reissue:
            rec.issued += 1
            await self._save(job)  # an interrupted command is re-issued, never forgotten
            work = asyncio.ensure_future(
                self._pool.call(device.issue, info, method, rec.secret, bound)
            )
            await self._watch(job, work, start, bound)
            try:
                rec.device_said.append(work.result())
            except (OSError, ValueError) as exc:
                raise _io_error(job.target, rec.method, exc) from None
            await self._save(job)
        if method.background:
            while True:
                status = await self._status(job, device, info, method)
                if status is None or status.state != "running":
                    if status is not None:
                        rec.device_said.append(status.said)
                        if status.state == "failed":
                            # Never enough for success, the device's word is for failure.
                            raise MfpsecError(
                                ErrorCode.WIPE_IO_ERROR,
                                target=job.target,
                                offset=-1,
                                reason=f"{rec.method}: the device "
                                f"reports that it failed ({status.said})",
                            )
                    break
                job.offset = int(status.fraction * job.size)
                await self._save(job)
                job.notify()
                self._check_bound(job, start, bound)
                await asyncio.sleep(self.settings.device_poll_s)
        rec.secret = ""  # the erase is over: the drive's one-time password is void

    async def _status(
        self, job: Job, device: MediaPurger, info: MediaInfo, method: PurgeMethod
    ) -> DeviceProgress | None:
        try:
            return await self._pool.call(device.progress, info, method)
        except (OSError, ValueError) as exc:
            raise _io_error(job.target, f"{method.value} status", exc) from None

    async def _watch(self, job: Job, work: asyncio.Future[str], start: float, bound: float) -> None:
        while True:
            done, _ = await asyncio.wait({work}, timeout=self.settings.poll_s)
            if done:
                return
            job.notify()
            try:
                self._check_bound(job, start, bound)
            except MfpsecError:
                # The thread is in the kernel or the tool: it cannot be taken back. Its
                # answer, if one ever comes, is only logged.
                work.add_done_callback(
                    lambda f: log.warning(
                        "a stuck purge command returned",
                        job=job.id,
                        said=None if f.cancelled() or f.exception() else f.result(),
                    )
                )
                raise

    def _check_bound(self, job: Job, start: float, bound: float) -> None:
        if job.stopping or job.cancelling:
            raise MfpsecError(ErrorCode.WIPE_CANCELLED, job=job.id)
        waited = self._clock.monotonic() - start
        if waited > bound:
            raise MfpsecError(ErrorCode.WIPE_DEVICE_STUCK, target=job.target, seconds=round(waited))

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
        await self._state.run(lambda conn: update_job(conn, job))

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

    # ---------------------------------------------------------------- job data (W-1)

    async def overwrite_job_data(self, path: Path, medium: Medium) -> str:
        """Overwrite (HDD) and unlink one finished job's file. → what was done."""
        plan = temporary_plan(self.settings.temporary_mode, medium)
        await self._pool.call(self._overwrite_and_unlink, path, plan)
        if plan is None:
            return "unlinked; overwrite is ineffective on flash, crypto-erase applies"
        return plan.describe()

    def _overwrite_and_unlink(self, path: Path, plan: OverwritePlan | None) -> None:
        if plan is not None:
            target = self._overwriter.open_file(path)
            try:
                size = target.size
                last = PassSpec(PassKind.BYTE)
                for p in plan.passes:
                    key = self._overwriter.new_key() if p.kind is PassKind.RANDOM else b""
                    last = PassSpec(p.kind, p.byte, key)
                    target.write_pass(0, size, last, target.new_progress(), 0)
                if plan.verification is ReadBack.LAST_PASS:
                    target.verify(0, size, last, target.new_progress())
            finally:
                target.close()
        os.unlink(path)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- persistence


def _io_error(target: str, what: str, exc: OSError | ValueError) -> MfpsecError:
    """A device command, status or read-back the kernel failed, or whose answer could not
    be parsed (ValueError); no byte offset applies."""
    return MfpsecError(ErrorCode.WIPE_IO_ERROR, target=target, offset=-1, reason=f"{what}: {exc}")


def _finding_text(f: purge_verify.Finding) -> str:
    blank = f", {f.uniform} more were blank before the erase and prove nothing" if f.uniform else ""
    if f.ok:
        return f"{f.blocks} blocks read back as expected{blank}"
    where = f" at offset {f.offset}" if f.offset >= 0 else ""
    return f"FAILED{where}: {f.reason} ({f.blocks} blocks judged{blank})"
