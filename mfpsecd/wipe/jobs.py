"""A sanitization job: its plan of steps, its state, the view clients get, and its row in
the state database (a job survives a power cut there and resumes from its checkpoint)."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from mfpsecd.audit.log_format import Subject
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.wipe.medium_marker import MediumMarker
from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.model.overwrite_plan import Medium, PassKind
from mfpsecd.wipe.ports import MediaInfo, PassSpec, WipeProgress
from mfpsecd.wipe.purge_record import PurgeRecord


class JobState(enum.StrEnum):
    """Stored as its value in `wipe_jobs.state` and shown as such on the wire."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


RUNNING, COMPLETED, FAILED, CANCELLED = JobState


class StepKind(enum.StrEnum):
    """What one step of a job does; stored as its value in the job's plan."""

    BYTE = "byte"  # an overwrite pass with one byte value
    RANDOM = "random"  # an overwrite pass of AES-256-CTR output
    VERIFY = "verify"  # the read-back of the last pass
    SAMPLE = "sample"  # a purge: blocks read before the device command
    DEVICE = "device"  # a purge: the device's own sanitize command
    CHECK = "check"  # a purge: the read-back after it


class _Step(msgspec.Struct, frozen=True, tag_field="kind"):
    """One step of a job, stored in its plan as {"kind": <StepKind>, its own fields}.
    (Plans from before carry every field on every step; each kind reads its own.)"""

    @property
    def kind(self) -> StepKind:
        return StepKind(str(self.__struct_config__.tag))


class BytePass(_Step, frozen=True, tag=StepKind.BYTE.value):
    byte: int


class RandomPass(_Step, frozen=True, tag=StepKind.RANDOM.value):
    key: str  # hex: the AES-256-CTR key that regenerates the pattern (protects nothing)


class VerifyStep(_Step, frozen=True, tag=StepKind.VERIFY.value):
    pass


class SampleStep(_Step, frozen=True, tag=StepKind.SAMPLE.value):
    pass


class DeviceStep(_Step, frozen=True, tag=StepKind.DEVICE.value):
    name: str  # the device's sanitize command


class CheckStep(_Step, frozen=True, tag=StepKind.CHECK.value):
    pass


Pass = BytePass | RandomPass
Step = BytePass | RandomPass | VerifyStep | SampleStep | DeviceStep | CheckStep


class JobPlan(msgspec.Struct, frozen=True):
    standard: str
    reason: str
    steps: list[Step]
    purge: PurgeRecord | None = None  # a media-aware purge: its plan, evidence, results
    # An overwrite's proof that it resumes on the same medium (jobs from before it: None).
    marker: MediumMarker | None = None


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
    method: str = "overwrite"  # or the device's purge command
    level: str = ""  # a purge's requested SP 800-88 level, "" for a plain sanitization
    error_code: str = ""  # the wire name of why it failed or was cancelled
    error_params: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    id: str
    target: str
    mode: int
    plan: JobPlan
    media: MediaInfo
    operator: Subject
    size: int
    started: str
    state: str = RUNNING
    step: int = 0
    offset: int = 0
    ended: str = ""
    resumed: int = 0
    error: str = ""  # why it did not complete, as text (or a note on a completed one)
    error_code: str = ""  # the same, typed: the error's wire name
    error_params: dict[str, str] = field(default_factory=dict)
    certificate: bytes = b""
    progress: WipeProgress | None = None
    task: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False  # the daemon is stopping: leave it to resume, do not fail it
    # Cancel asked: the run stops at its next chunk. `state` changes only once the row
    # says so, so what a client sees is what the database holds.
    cancelling: bool = False
    # A certificate signed on request (the key chain was locked at the end): one signer.
    signing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    @property
    def purge(self) -> PurgeRecord | None:
        return self.plan.purge

    def view(self) -> JobView:
        pos = self.offset
        if self.progress is not None and self.state == RUNNING:
            pos = self.progress.position
        digest = ""
        if self.certificate:
            digest = cert.digest(cert.decode_document(self.certificate).certificate).hex()
        over = self.state != RUNNING and (self.task is None or self.task.done())
        p = self.purge
        return JobView(
            self.id,
            self.target,
            self.mode,
            self.state,
            self.step,
            [describe(s) for s in self.plan.steps],
            pos,
            self.size,
            self.started,
            self.ended,
            self.resumed,
            self.error,
            digest,
            over,
            method=p.method if p is not None else "overwrite",
            error_code=self.error_code,
            error_params=dict(self.error_params),
            level=p.requested if p is not None else "",
        )


def describe(step: Step) -> str:
    if isinstance(step, BytePass):
        return f"0x{step.byte:02X}"
    if isinstance(step, DeviceStep):
        return step.name
    return step.kind.value


def step_spec(step: Step) -> PassSpec:
    """What the overwrite engine writes (or compares with) for a pass."""
    if isinstance(step, RandomPass):
        return PassSpec(PassKind.RANDOM, 0, bytes.fromhex(step.key))
    if isinstance(step, BytePass):
        return PassSpec(PassKind.BYTE, step.byte)
    raise ValueError(f"a {step.kind} step writes nothing")


def last_pass(plan: JobPlan) -> Pass:
    return [s for s in plan.steps if isinstance(s, BytePass | RandomPass)][-1]


_MEDIA = msgspec.json.Encoder()


_COLUMNS = (
    "id, target, mode, plan, media, operator, state, step, offset, size, started_at, "
    "ended_at, resumed, error, certificate, error_code, error_params"
)
_INSERT = (
    f"INSERT INTO wipe_jobs ({_COLUMNS}) VALUES "  # noqa: S608 (constant column list)
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = f"SELECT {_COLUMNS} FROM wipe_jobs ORDER BY started_at"  # noqa: S608 (constant)


def _media_json(m: MediaInfo) -> str:
    return _MEDIA.encode(
        {
            "id": m.id,
            "path": str(m.path),
            "medium": m.medium.value,
            "sanitizable": m.sanitizable,
            "size_bytes": m.size_bytes,
            "logical_block": m.logical_block,
            "rotational": m.rotational,
            "transport": m.transport,
            "model": m.model,
            "serial": m.serial,
            "in_use": m.in_use,
        }
    ).decode()


def _media_from(text: str) -> MediaInfo:
    d = msgspec.json.decode(text)
    return MediaInfo(
        id=d["id"],
        path=Path(d["path"]),
        medium=Medium(d["medium"]),
        sanitizable=d["sanitizable"],
        size_bytes=d["size_bytes"],
        logical_block=d["logical_block"],
        rotational=d["rotational"],
        transport=d["transport"],
        model=d["model"],
        serial=d["serial"],
        in_use=d["in_use"],
    )


def insert_job(conn: StateConnection, job: Job) -> None:
    conn.execute(
        _INSERT,
        (
            job.id,
            job.target,
            job.mode,
            msgspec.json.encode(job.plan).decode(),
            _media_json(job.media),
            msgspec.json.encode(job.operator).decode(),
            job.state,
            job.step,
            job.offset,
            job.size,
            job.started,
            job.ended,
            job.resumed,
            job.error,
            job.certificate.decode(),
            job.error_code,
            msgspec.json.encode(job.error_params).decode(),
        ),
    )


def update_job(conn: StateConnection, job: Job, state: str | None = None) -> None:
    conn.execute(
        "UPDATE wipe_jobs SET state = ?, step = ?, offset = ?, ended_at = ?, "
        "resumed = ?, error = ?, certificate = ?, plan = ?, error_code = ?, error_params = ? "
        "WHERE id = ?",
        (
            state or job.state,
            job.step,
            job.offset,
            job.ended,
            job.resumed,
            job.error,
            job.certificate.decode(),
            msgspec.json.encode(job.plan).decode(),
            job.error_code,
            msgspec.json.encode(job.error_params).decode(),
            job.id,
        ),
    )


def load_jobs(conn: StateConnection) -> list[Job]:
    out = []
    for row in conn.execute(_SELECT).fetchall():
        (
            id_,
            target,
            mode,
            plan,
            media,
            operator,
            state,
            step,
            offset,
            size,
            started,
            ended,
            resumed,
            error,
            certificate,
            error_code,
            error_params,
        ) = row
        out.append(
            Job(
                id=str(id_),
                target=str(target),
                mode=int(str(mode)),
                plan=msgspec.json.decode(str(plan), type=JobPlan),
                media=_media_from(str(media)),
                operator=msgspec.json.decode(str(operator), type=Subject),
                size=int(str(size)),
                started=str(started),
                state=str(state),
                step=int(str(step)),
                offset=int(str(offset)),
                ended=str(ended),
                resumed=int(str(resumed)),
                error=str(error),
                error_code=str(error_code),
                error_params=msgspec.json.decode(str(error_params), type=dict[str, str]),
                certificate=str(certificate).encode(),
            )
        )
    return out


async def save_job(state: StateStore, job: Job) -> None:
    """The job's progress and record, durable before anyone is told."""
    await state.run(lambda conn: update_job(conn, job))
