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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.api.auditlog import DAEMON, EventType, Outcome, Subject
from mfpsecd.api.types import HealthState
from mfpsecd.core import wipe_certificate as cert
from mfpsecd.core.overwrite_plan import (
    Medium,
    OverwritePlan,
    PassKind,
    Verification,
    discard_plan,
    temporary_plan,
)
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.ports import (
    Clock,
    DiskInventory,
    MediaInfo,
    Overwriter,
    OverwriteTarget,
    PassSpec,
    StateConnection,
    StateStore,
    WipeProgress,
)
from mfpsecd.services.audit import Auditor, Signer
from mfpsecd.services.health import HealthRegistry, rfc3339

log = structlog.get_logger("mfpsecd.wipe")

RUNNING, COMPLETED, FAILED, CANCELLED = "running", "completed", "failed", "cancelled"
VERIFY_METHOD = "full read-back of every byte, compared with the last pass"


@dataclass(frozen=True)
class WipeSettings:
    temporary_mode: int = 2  # W-1 mode for job data on HDD
    sync_every: int = 1 << 30  # durable checkpoint cadence: at most this much is redone
    poll_s: float = 0.25  # progress and checkpoint cadence while a step runs


class _Step(msgspec.Struct, frozen=True):
    kind: str  # "byte" | "random" | "verify"
    byte: int = 0
    key: str = ""  # hex, random passes only


class _Plan(msgspec.Struct, frozen=True):
    standard: str
    reason: str
    steps: list[_Step]


@dataclass
class JobView:
    id: str
    target: str
    mode: int
    state: str
    step: int  # index of the step running (== len(steps) when all are done)
    steps: list[str]  # "0x00", "random", "verify"
    position: int  # bytes of the current step done
    size: int
    started: str
    ended: str
    resumed: int
    error: str
    certificate_digest: str
    over: bool  # ended, and its result (audit record, certificate) is recorded


@dataclass
class _Job:
    id: str
    target: str
    mode: int
    plan: _Plan
    media: MediaInfo
    operator: Subject
    size: int
    started: str
    state: str = RUNNING
    step: int = 0
    offset: int = 0
    ended: str = ""
    resumed: int = 0
    error: str = ""
    certificate: bytes = b""
    progress: WipeProgress | None = None
    task: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False  # the daemon is stopping: leave it to resume, do not fail it

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def view(self) -> JobView:
        pos = self.offset
        if self.progress is not None and self.state == RUNNING:
            pos = self.progress.position
        digest = ""
        if self.certificate:
            digest = cert.digest(cert.decode_document(self.certificate).certificate).hex()
        over = self.state != RUNNING and (self.task is None or self.task.done())
        return JobView(self.id, self.target, self.mode, self.state, self.step,
                       [_describe(s) for s in self.plan.steps], pos, self.size, self.started,
                       self.ended, self.resumed, self.error, digest, over)


def _describe(step: _Step) -> str:
    if step.kind == "byte":
        return f"0x{step.byte:02X}"
    return step.kind


def _spec(step: _Step) -> PassSpec:
    if step.kind == "random":
        return PassSpec(PassKind.RANDOM, 0, bytes.fromhex(step.key))
    return PassSpec(PassKind.BYTE, step.byte)


def _last_pass(plan: _Plan) -> _Step:
    return [s for s in plan.steps if s.kind != "verify"][-1]


_MEDIA = msgspec.json.Encoder()


class WipeService:
    def __init__(self, state: StateStore, disks: DiskInventory, overwriter: Overwriter,
                 auditor: Auditor, clock: Clock, *, signer: Signer,
                 identity: Callable[[], bytes | None], device: str, tool: str,
                 settings: WipeSettings | None = None, health: HealthRegistry | None = None,
                 before_step: Callable[[str, int], Awaitable[None]] | None = None) -> None:
        self._state = state
        self._disks = disks
        self._overwriter = overwriter
        self._auditor = auditor
        self._clock = clock
        self._signer = signer
        # The device identity key's SubjectPublicKeyInfo (DER), None while it is unavailable.
        self._identity = identity
        self._device = device
        self._tool = tool
        self.settings = settings or WipeSettings()
        # Test hook: runs before each step (job id, step index): to look at what the previous
        # pass left, or to corrupt a block between the last pass and the read-back.
        self._before_step = before_step
        self._jobs: dict[str, _Job] = {}
        self._health = health

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Load every job; resume those a power cut (or a stop) left running."""
        for job in await self._state.run(_load_jobs):
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

    def _get(self, job_id: str) -> _Job:
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
            raise MfpsecError(ErrorCode.WIPE_TARGET_REFUSED, target=target,
                              reason="not listed as sanitizable in the board profile")
        if info.in_use:
            raise MfpsecError(ErrorCode.WIPE_TARGET_REFUSED, target=target, reason=info.in_use)
        if info.size_bytes <= 0:
            raise MfpsecError(ErrorCode.WIPE_TARGET_REFUSED, target=target,
                              reason="the target has no size")
        return info

    async def begin(self, target: str, mode: int, operator: Subject) -> JobView:
        async with self._auditor.event(EventType.SANITIZE, operator, target) as ev:
            ev.details.update(phase="start", mode=mode)
            for job in self._jobs.values():
                if job.target == target and job.state == RUNNING:
                    raise MfpsecError(ErrorCode.WIPE_ALREADY_RUNNING, target=target, job=job.id)
            info = self._usable(target)
            choice = discard_plan(mode, info.medium)
            steps = [self._step(p.kind, p.byte) for p in choice.plan.passes]
            if choice.plan.verification is Verification.LAST_PASS:
                steps.append(_Step("verify"))
            now = self._clock.now()
            job = _Job(id=f"{target}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}",
                       target=target, mode=mode,
                       plan=_Plan(choice.plan.standard, choice.reason, steps), media=info,
                       operator=operator, size=info.size_bytes, started=rfc3339(self._clock))
            ev.object = job.id
            ev.details.update(target=target, plan=choice.plan.describe(), bytes=job.size)
            await self._state.run(lambda conn: _insert(conn, job))
            self._jobs[job.id] = job
            ev.succeed()
        job.task = asyncio.create_task(self._run(job), name=f"wipe {job.id}")
        self._report()
        return job.view()

    def _report(self) -> None:
        """The component line in the daemon status: what is running, or how the last ended."""
        if self._health is None:
            return
        running = [j.id for j in self._jobs.values() if j.state == RUNNING]
        ended = sorted((j for j in self._jobs.values() if j.state != RUNNING),
                       key=lambda j: j.ended)
        detail = f"{len(self._disks.ids())} disk(s); "
        if running:
            detail += f"running: {', '.join(running)}"
        elif ended:
            detail += f"last: {ended[-1].id} {ended[-1].state}"
        else:
            detail += "no sanitization yet"
        self._health.set("wipe", HealthState.OK, detail)

    def _step(self, kind: PassKind, byte: int) -> _Step:
        if kind is PassKind.RANDOM:
            return _Step("random", key=self._overwriter.new_key().hex())
        return _Step("byte", byte)

    async def cancel(self, job_id: str, subject: Subject) -> JobView:
        job = self._get(job_id)
        async with self._auditor.event(EventType.SANITIZE, subject, job.id) as ev:
            ev.details["phase"] = "cancel"
            if job.state != RUNNING:
                return job.view()  # already over: nothing to cancel
            job.state = CANCELLED
            if job.progress is not None:
                job.progress.cancel()
            if job.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task
            ev.succeed()
        return job.view()

    async def _run(self, job: _Job) -> None:
        target: OverwriteTarget | None = None
        try:
            info = self._usable(job.target)
            if info.size_bytes != job.size:
                raise MfpsecError(ErrorCode.WIPE_TARGET_REFUSED, target=job.target,
                                  reason=f"size changed from {job.size} to {info.size_bytes}")
            target = await asyncio.to_thread(self._overwriter.open, info)
            while job.step < len(job.plan.steps):
                if job.stopping or job.state != RUNNING:
                    raise MfpsecError(ErrorCode.WIPE_CANCELLED, job=job.id)
                await self._run_step(job, target)
            await self._finish(job)
        except MfpsecError as exc:
            if job.stopping and exc.code is ErrorCode.WIPE_CANCELLED:
                log.info("sanitization paused for shutdown", job=job.id, step=job.step,
                         offset=job.offset)
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

    async def _run_step(self, job: _Job, target: OverwriteTarget) -> None:
        step = job.plan.steps[job.step]
        verifying = step.kind == "verify"
        if self._before_step is not None:
            await self._before_step(job.id, job.step)
        spec = _spec(_last_pass(job.plan) if verifying else step)
        progress = target.new_progress()
        job.progress = progress
        start = job.offset
        if verifying:
            work = asyncio.to_thread(target.verify, start, job.size, spec, progress)
        else:
            work = asyncio.to_thread(target.write_pass, start, job.size, spec, progress,
                                     self.settings.sync_every)
        fut = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=self.settings.poll_s)
            # A read-back needs no durability; a pass is only as far as it was flushed.
            mark = progress.position if verifying else progress.durable
            if mark > job.offset and job.state == RUNNING:
                job.offset = mark
                await self._save(job)
            job.notify()
            if done:
                break
        fut.result()  # the step's MfpsecError, if any
        await self._auditor.record(
            EventType.SANITIZE, Outcome.SUCCESS, DAEMON, job.id,
            phase="verify" if verifying else "pass", step=job.step + 1,
            steps=len(job.plan.steps), pattern=_describe(step),
            buffered=progress.buffered)
        job.step += 1
        job.offset = 0
        await self._save(job)

    async def _finish(self, job: _Job) -> None:
        job.state = COMPLETED
        job.ended = rfc3339(self._clock)
        body = self._body(job, "success", "passed")
        try:
            job.certificate = await self._sign(body)
        except MfpsecError as exc:
            # The target IS sanitized; only the proof could not be signed now.
            job.error = f"certificate not signed: {exc.code.wire_name}"
        await self._save(job)
        await self._auditor.record(EventType.SANITIZE, Outcome.SUCCESS, job.operator, job.id,
                                   phase="result", result="success",
                                   certificate_sha256=cert.digest(body).hex())
        log.info("sanitization completed", job=job.id)

    async def _fail(self, job: _Job, exc: MfpsecError) -> None:
        cancelled = exc.code is ErrorCode.WIPE_CANCELLED or job.state == CANCELLED
        job.state = CANCELLED if cancelled else FAILED
        job.ended = rfc3339(self._clock)
        job.error = exc.code.wire_name + "".join(f" {k}={v}" for k, v in exc.params.items()
                                                 if k != "job")
        await self._save(job)
        await self._auditor.record(EventType.SANITIZE, Outcome.FAILURE, job.operator, job.id,
                                   phase="result", result=job.state, error=job.error)
        log.warning("sanitization did not complete", job=job.id, state=job.state,
                    error=job.error)

    async def _save(self, job: _Job) -> None:
        await self._state.run(lambda conn: _update(conn, job))

    # ---------------------------------------------------------------- certificates

    def _body(self, job: _Job, result: str, verification: str) -> cert.CertificateBody:
        m = job.media
        passes = [_describe(s) for s in job.plan.steps if s.kind != "verify"]
        return cert.CertificateBody(
            format=cert.FORMAT, id=job.id, device=self._device,
            media=cert.Media(id=m.id, type=m.medium.value, model=m.model, serial=m.serial,
                             size_bytes=job.size, transport=m.transport),
            method=cert.Method(category="clear", technique="overwrite", mode=job.mode,
                               standard=job.plan.standard, passes=passes,
                               reason=job.plan.reason, tool=self._tool),
            verification=cert.Verification(method=VERIFY_METHOD, result=verification),
            operator=cert.Operator(user=job.operator.user, role=job.operator.role,
                                   origin=job.operator.origin),
            started=job.started, ended=job.ended, resumed=job.resumed, result=result)

    async def _sign(self, body: cert.CertificateBody) -> bytes:
        signed = await self._signer(cert.digest(body))
        if signed is None:
            raise MfpsecError(ErrorCode.KEYS_UNAVAILABLE,
                              reason="the device identity key cannot sign now")
        signature, spki = signed
        pem = serialization.load_der_public_key(spki).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cert.encode_document(cert.CertificateDocument(
            certificate=body, signature=cert.Signature(alg=cert.SIGNATURE_ALG,
                                                       public_key=pem.decode(),
                                                       value=signature.hex())))

    async def certificate(self, job_id: str) -> cert.CertificateDocument:
        job = self._get(job_id)
        if job.state == COMPLETED and not job.certificate:
            # Completed while the identity key could not sign (key chain locked): the body
            # is fixed by the job's record, so it is signed now, as it would have been.
            job.certificate = await self._sign(self._body(job, "success", "passed"))
            job.error = ""
            await self._save(job)
        if not job.certificate:
            raise MfpsecError(ErrorCode.WIPE_JOB_NOT_FOUND,
                              f"sanitization {job_id} has no certificate: it is {job.state}",
                              job=job_id)
        return cert.decode_document(job.certificate)

    async def verify_certificate(self, data: bytes) -> tuple[cert.CertificateDocument, bool]:
        """Signature first, then the parse is trusted. → (document, signed by this device)."""
        try:
            doc = cert.decode_document(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise MfpsecError(ErrorCode.WIPE_CERTIFICATE_INVALID, reason=f"malformed: {exc}"
                              ) from None
        if doc.signature.alg != cert.SIGNATURE_ALG:
            raise MfpsecError(ErrorCode.WIPE_CERTIFICATE_INVALID,
                              reason=f"unknown signature algorithm {doc.signature.alg!r}")
        try:
            key = serialization.load_pem_public_key(doc.signature.public_key.encode())
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValueError("not an EC key")
            key.verify(bytes.fromhex(doc.signature.value), cert.canonical(doc.certificate),
                       ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            raise MfpsecError(ErrorCode.WIPE_CERTIFICATE_INVALID,
                              reason="the signature does not match the certificate") from None
        mine = self._identity()
        ours = mine is not None and key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == mine
        return doc, ours

    # ---------------------------------------------------------------- job data (W-1)

    async def overwrite_job_data(self, path: Path, medium: Medium) -> str:
        """Overwrite (HDD) and unlink one finished job's file. → what was done."""
        plan = temporary_plan(self.settings.temporary_mode, medium)
        await asyncio.to_thread(self._overwrite_and_unlink, path, plan)
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
                if plan.verification is Verification.LAST_PASS:
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

_COLUMNS = ("id, target, mode, plan, media, operator, state, step, offset, size, started_at, "
            "ended_at, resumed, error, certificate")
_INSERT = (f"INSERT INTO wipe_jobs ({_COLUMNS}) VALUES "  # noqa: S608 (constant column list)
           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SELECT = f"SELECT {_COLUMNS} FROM wipe_jobs ORDER BY started_at"  # noqa: S608 (constant)


def _media_json(m: MediaInfo) -> str:
    return _MEDIA.encode({"id": m.id, "path": str(m.path), "medium": m.medium.value,
                          "sanitizable": m.sanitizable, "size_bytes": m.size_bytes,
                          "logical_block": m.logical_block, "rotational": m.rotational,
                          "transport": m.transport, "model": m.model, "serial": m.serial,
                          "in_use": m.in_use}).decode()


def _media_from(text: str) -> MediaInfo:
    d = msgspec.json.decode(text)
    return MediaInfo(id=d["id"], path=Path(d["path"]), medium=Medium(d["medium"]),
                     sanitizable=d["sanitizable"], size_bytes=d["size_bytes"],
                     logical_block=d["logical_block"], rotational=d["rotational"],
                     transport=d["transport"], model=d["model"], serial=d["serial"],
                     in_use=d["in_use"])


def _insert(conn: StateConnection, job: _Job) -> None:
    conn.execute(_INSERT,
                 (job.id, job.target, job.mode, msgspec.json.encode(job.plan).decode(),
                  _media_json(job.media), msgspec.json.encode(job.operator).decode(),
                  job.state, job.step, job.offset, job.size, job.started, job.ended,
                  job.resumed, job.error, job.certificate.decode()))


def _update(conn: StateConnection, job: _Job) -> None:
    conn.execute("UPDATE wipe_jobs SET state = ?, step = ?, offset = ?, ended_at = ?, "
                 "resumed = ?, error = ?, certificate = ? WHERE id = ?",
                 (job.state, job.step, job.offset, job.ended, job.resumed, job.error,
                  job.certificate.decode(), job.id))


def _load_jobs(conn: StateConnection) -> list[_Job]:
    out = []
    for row in conn.execute(_SELECT).fetchall():
        (id_, target, mode, plan, media, operator, state, step, offset, size, started,
         ended, resumed, error, certificate) = row
        out.append(_Job(id=str(id_), target=str(target), mode=int(str(mode)),
                        plan=msgspec.json.decode(str(plan), type=_Plan),
                        media=_media_from(str(media)),
                        operator=msgspec.json.decode(str(operator), type=Subject),
                        size=int(str(size)), started=str(started), state=str(state),
                        step=int(str(step)), offset=int(str(offset)), ended=str(ended),
                        resumed=int(str(resumed)), error=str(error),
                        certificate=str(certificate).encode()))
    return out
