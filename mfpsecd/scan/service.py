"""The virus scan of job data (SPEC V-1..V-3): the data on its way into the job store is
copied through the scanning engine chunk by chunk, so nothing holds a whole job and no
plaintext is written here; the store keeps the object only when the verdict allows it.

This module gives the store the blocking copy (`copy`, run beside the seal in the
store's worker), judges a verdict against the administrator's settings (what a detection
does to the job, what a scanner failure does to the data) and records it, and keeps the
engine's state current for status and the posture (`check`, every CHECK_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, utc_text
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.scan.model.outcome import (
    FailurePolicy,
    JobAction,
    RxOption,
    Source,
    Verdict,
    job_action,
)
from mfpsecd.scan.ports import ScanEngine, ScanStream

log = structlog.get_logger("mfpsecd.scan")
T = TypeVar("T")
HEALTH = "virus-scan"
CHECK_S = 60.0
CHUNK = 1 << 20  # what the copy holds: one chunk
PIPE_BYTES = 1 << 20  # the pipe to the sealer (the default maximum for anyone)
POLL_MS = 250  # how soon a stopped copy notices


@dataclass(frozen=True)
class ScanSettings:
    engine: str  # where the engine is, for people ("clamd at /run/clamav/clamd.ctl")
    rx_option: RxOption
    on_failure: FailurePolicy
    max_database_age_s: float  # 0: not checked


@dataclass(frozen=True)
class Judgement:
    """What a verdict means for the data and its job."""

    store: bool  # the data is stored
    mark: str  # the stored object's scan mark: "clean" or "not-scanned"
    action: JobAction | None  # a detection's consequence for the job


class CopyStopped(Exception):
    """The copy was told to stop (the seal ended first: cancelled or failed)."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class VirusScan:
    def __init__(
        self,
        engine: ScanEngine,
        settings: ScanSettings,
        *,
        clock: Clock,
        health: HealthRegistry,
        auditor: Auditor,
    ) -> None:
        self._engine = engine
        self.settings = settings
        self._clock = clock
        self._health = health
        self._auditor = auditor
        self._unusable = "not checked yet"  # why a scan would fail now ("" when it would not)
        self._engine_text = ""

    # ------------------------------------------------------------ the engine's state

    @property
    def state(self) -> tuple[bool, str]:
        """(usable, what status says)."""
        if self._unusable:
            return False, self._unusable
        return True, self._engine_text

    async def check(self) -> None:
        try:
            info = await asyncio.to_thread(self._engine.info)
        except OSError as exc:
            self._set_unusable(f"{self.settings.engine} cannot be reached: {exc.strerror or exc}")
            return
        age_limit = self.settings.max_database_age_s
        if info.database_date is None and info.database:
            self._set_unusable(f"{info.version}: the database's date cannot be read")
            return
        if info.database_date is None:
            database = "local signature databases only"
        else:
            built = dt.datetime.fromtimestamp(info.database_date, dt.UTC)
            database = f"database {info.database} of {utc_text(built, 'seconds')}"
        self._engine_text = f"{info.version}, {database}"
        if age_limit and info.database_date is not None:
            age = self._clock.now().timestamp() - info.database_date
            if age > age_limit:
                self._set_unusable(
                    f"{self._engine_text}: older than {age_limit / 86400:g} days "
                    "(scan.max_database_age_days)"
                )
                return
        self._unusable = ""
        self._health.set(HEALTH, HealthState.OK, f"{self.settings.engine}: {self._engine_text}")

    def _set_unusable(self, why: str) -> None:
        if why != self._unusable:
            log.error("virus_scan_unusable", reason=why)
        self._unusable = why
        self._health.set(HEALTH, HealthState.FAILED, why)

    async def run(self) -> None:
        while True:
            await self.check()
            await self._clock.sleep(CHECK_S)

    # ------------------------------------------------------------ the copy

    def through(self, src_fd: int, consume: Callable[[int], T]) -> tuple[T, Verdict]:
        """consume (the sealer) reads everything readable from src_fd through a pipe
        while this thread's copy feeds the same chunks to the engine. Blocking: run in
        the store's worker. → (consume's result, the verdict). The data always flows:
        whether it is kept when the scan fails is the caller's decision (judge)."""
        r, w = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # fewer hand-overs to the sealer; 64 KiB else
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        stop = threading.Event()
        verdicts: list[Verdict] = []
        errors: list[BaseException] = []

        def copy() -> None:
            try:
                verdicts.append(self._copy(src_fd, w, stop))
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=copy, name="virus-scan", daemon=True)
        worker.start()
        try:
            result = consume(r)
        finally:
            os.close(r)  # a copy still writing gets EPIPE
            stop.set()  # a copy waiting for a stalled client stops
            worker.join()
        if errors:
            # The copy ended early (the client's descriptor failed): the sealer saw an
            # end of data that was not the data's end. Nothing of it may be kept.
            raise errors[0]
        return result, verdicts[0]

    def _copy(self, src_fd: int, dst_fd: int, stop: threading.Event) -> Verdict:
        stream: ScanStream | None = None
        failure = self._unusable
        try:
            try:
                if not failure:
                    try:
                        stream = self._engine.stream()
                    except OSError as exc:
                        failure = f"{self.settings.engine} cannot be reached: {exc.strerror or exc}"
                total = self._pump(src_fd, dst_fd, stream, stop)
            finally:
                os.close(dst_fd)  # the sealer's end of data, before the verdict's wait
            if stream is None:
                return Verdict(failure=failure)
            verdict = stream.finish()
            if verdict.clean and verdict.scanned != total:
                why = f"the scanner took {verdict.scanned} of {total} bytes"
                return Verdict(failure=why, scanned=verdict.scanned)
            return verdict
        finally:
            if stream is not None:
                stream.close()

    @staticmethod
    def _pump(src_fd: int, dst_fd: int, stream: ScanStream | None, stop: threading.Event) -> int:
        poller = select.poll()
        poller.register(src_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        total = 0
        while True:
            if stop.is_set():
                raise CopyStopped
            if not poller.poll(POLL_MS):
                continue
            chunk = os.read(src_fd, CHUNK)
            if not chunk:
                return total
            if stream is not None:
                stream.feed(chunk)
            _write_all(dst_fd, chunk)
            total += len(chunk)

    # ------------------------------------------------------------ the verdict

    def judge(self, verdict: Verdict, source: Source) -> Judgement:
        if verdict.signature:
            return Judgement(False, "", job_action(source, self.settings.rx_option))
        if verdict.failure:
            keep = self.settings.on_failure is FailurePolicy.STORE_UNSCANNED
            return Judgement(keep, "not-scanned" if keep else "", None)
        return Judgement(True, "clean", None)

    async def record(
        self,
        verdict: Verdict,
        judgement: Judgement,
        subject: Subject,
        *,
        object_id: str,
        job: str,
        owner: str,
        source: Source,
        deleted: int = 0,
    ) -> None:
        """The audit record of a detection or a failure (a clean scan is the store's
        own record of the object)."""
        common = {"job": job, "owner": owner, "source": source.value, "bytes": verdict.scanned}
        if verdict.signature:
            assert judgement.action is not None
            await self._auditor.record(
                EventType.VIRUS_DETECTED,
                Outcome.FAILURE,
                subject,
                object_id,
                signature=verdict.signature,
                action=judgement.action.value,
                option=self.settings.rx_option.value,
                deleted=deleted,
                **common,
            )
        elif verdict.failure:
            await self._auditor.record(
                EventType.SCAN_FAILED,
                Outcome.FAILURE,
                subject,
                object_id,
                reason=verdict.failure,
                policy=self.settings.on_failure.value,
                stored=judgement.store,
                **common,
            )
