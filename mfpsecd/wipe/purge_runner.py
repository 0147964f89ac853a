"""The device steps of a media-aware purge (SPEC W-3..W-5): sample the blocks the
read-back will judge, issue the device's own sanitize command under a watchdog's bound
(again after a power cut, unless a background sanitize still runs in the device), and
judge the read-back. A device that never answers fails the purge, loudly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateStore
from mfpsecd.base.transfer import WorkerPool
from mfpsecd.wipe.jobs import Job, StepKind, save_job
from mfpsecd.wipe.model import purge_verify
from mfpsecd.wipe.model.purge_plan import Expect, PurgeMethod
from mfpsecd.wipe.ports import DeviceProgress, MediaInfo, MediaPurger
from mfpsecd.wipe.purge_record import PurgeRecord, blocks_before, digests_before, judge, positions

log = structlog.get_logger("mfpsecd.wipe")
_T = TypeVar("_T")


def io_error(target: str, what: str, exc: OSError | ValueError) -> MfpsecError:
    """A device command, status or read-back the kernel failed, or whose answer could not
    be parsed (ValueError); no byte offset applies."""
    return MfpsecError(ErrorCode.WIPE_IO_ERROR, target=target, offset=-1, reason=f"{what}: {exc}")


class PurgeRunner:
    """Runs a purge job's sample, device command and check, one step per call."""

    def __init__(
        self,
        state: StateStore,
        pool: WorkerPool,
        auditor: Auditor,
        clock: Clock,
        purger: MediaPurger | None,
        *,
        poll_s: float,
        bound_s: float,
        device_poll_s: float,
    ) -> None:
        self._state = state
        self._pool = pool
        self._auditor = auditor
        self._clock = clock
        self._purger = purger
        self._poll_s = poll_s
        # A device command with no result after max(this, 3 x the device's own estimate)
        # is reported stuck and the purge FAILED, instead of being waited on forever.
        self._bound_s = bound_s
        self._device_poll_s = device_poll_s

    def device(self, target: str) -> MediaPurger:
        if self._purger is None:
            raise MfpsecError(
                ErrorCode.WIPE_TARGET_REFUSED,
                target=target,
                reason="this daemon has no media purge backend",
            )
        return self._purger

    async def run_step(self, job: Job, info: MediaInfo) -> None:
        rec = job.purge
        assert rec is not None
        step = job.plan.steps[job.step]
        device = self.device(job.target)
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
            await save_job(self._state, job)
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
        await save_job(self._state, job)

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
            raise io_error(info.id, "read-back", exc) from None

    async def _device_command(
        self, job: Job, info: MediaInfo, device: MediaPurger, rec: PurgeRecord
    ) -> None:
        """Issue the command (again after a power cut, unless a background sanitize is
        still running in the device or finished there), then wait for it under the
        watchdog's bound."""
        method = PurgeMethod(rec.method)
        bound = max(self._bound_s, 3 * rec.estimate_s)
        start = self._clock.monotonic()
        reissue = True
        if rec.issued and method.background:
            status = await self._status(job, device, info, method)
            # Running or done in the device: follow it. Failed, or never started: again.
            reissue = status is None or status.state in ("failed", "idle")
            rec.device_said.append(f"after restart: {status.said if status else 'no status'}")
        if reissue:
            rec.issued += 1
            await save_job(self._state, job)  # an interrupted command is re-issued, never lost
            work = asyncio.ensure_future(
                self._pool.call(device.issue, info, method, rec.secret, bound)
            )
            await self._watch(job, work, start, bound)
            try:
                rec.device_said.append(work.result())
            except (OSError, ValueError) as exc:
                raise io_error(job.target, rec.method, exc) from None
            await save_job(self._state, job)
        if method.background:
            await self._follow(job, info, device, rec, start=start, bound=bound)
        rec.secret = ""  # the erase is over: the drive's one-time password is void

    async def _follow(
        self,
        job: Job,
        info: MediaInfo,
        device: MediaPurger,
        rec: PurgeRecord,
        *,
        start: float,
        bound: float,
    ) -> None:
        """A background sanitize, polled until the device says it is over."""
        method = PurgeMethod(rec.method)
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
                return
            job.offset = int(status.fraction * job.size)
            await save_job(self._state, job)
            job.notify()
            self._check_bound(job, start, bound)
            await asyncio.sleep(self._device_poll_s)

    async def _status(
        self, job: Job, device: MediaPurger, info: MediaInfo, method: PurgeMethod
    ) -> DeviceProgress | None:
        try:
            return await self._pool.call(device.progress, info, method)
        except (OSError, ValueError) as exc:
            raise io_error(job.target, f"{method.value} status", exc) from None

    async def _watch(self, job: Job, work: asyncio.Future[str], start: float, bound: float) -> None:
        while True:
            done, _ = await asyncio.wait({work}, timeout=self._poll_s)
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


def _finding_text(f: purge_verify.Finding) -> str:
    blank = f", {f.uniform} more were blank before the erase and prove nothing" if f.uniform else ""
    if f.ok:
        return f"{f.blocks} blocks read back as expected{blank}"
    where = f" at offset {f.offset}" if f.offset >= 0 else ""
    return f"FAILED{where}: {f.reason} ({f.blocks} blocks judged{blank})"
