"""The engine's overwrite steps of a sanitization job (SPEC W-2, W-5): each pass, then
the read-back, runs in the native engine in a worker thread while this task polls its
progress, persists the durable checkpoint and tells watchers. Around them the medium's
marker proves that a resumed job still writes to the medium it started on."""

from __future__ import annotations

import asyncio

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome
from mfpsecd.audit.service import Auditor
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateStore
from mfpsecd.base.transfer import WorkerPool
from mfpsecd.wipe.jobs import Job, StepKind, describe, last_pass, save_job, step_spec
from mfpsecd.wipe.medium_marker import MarkerState, MediumMarker, passes_end
from mfpsecd.wipe.ports import OverwriteTarget


class OverwriteRunner:
    """Runs a job's passes and read-back on an opened target, one step per call."""

    def __init__(
        self,
        state: StateStore,
        pool: WorkerPool,
        auditor: Auditor,
        *,
        sync_every: int,
        poll_s: float,
    ) -> None:
        self._state = state
        self._pool = pool
        self._auditor = auditor
        self._sync_every = sync_every  # durable checkpoint cadence: at most this is redone
        self._poll_s = poll_s

    async def run_step(self, job: Job, target: OverwriteTarget) -> None:
        step = job.plan.steps[job.step]
        verifying = step.kind is StepKind.VERIFY
        spec = step_spec(last_pass(job.plan) if verifying else step)
        progress = target.new_progress()
        job.progress = progress
        start, end = job.offset, passes_end(job.plan.marker, job.size)
        if verifying:
            work = self._pool.call(target.verify, start, end, spec, progress)
        else:
            work = self._pool.call(target.write_pass, start, end, spec, progress, self._sync_every)
        fut = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=self._poll_s)
            # A read-back needs no durability; a pass is only as far as it was flushed.
            mark = progress.position if verifying else progress.durable
            if mark > job.offset and not job.cancelling:
                job.offset = mark
                await save_job(self._state, job)
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
        await save_job(self._state, job)

    # ---------------------------------------------------------------- same medium

    async def prove_medium(self, job: Job, target: OverwriteTarget) -> None:
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
            await save_job(self._state, job)
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

    async def seal_marker(self, job: Job, target: OverwriteTarget) -> None:
        """The marker, proven once more, gets every pass in turn and the read-back."""
        marker = job.plan.marker
        if marker is None or marker.is_(MarkerState.SEALED):
            return
        if marker.is_(MarkerState.WRITTEN):
            await self._check_marker(job, target, marker)
            marker.state = MarkerState.SEALING.value
            await save_job(self._state, job)
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
        await save_job(self._state, job)
