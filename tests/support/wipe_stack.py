"""The sanitization service on image files, with a real audit log, a real state database
and a signing identity: the stack the wipe service tests share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.config.schema import DiskSection, MediumKind
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.paths import Paths
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.model import identity_history
from mfpsecd.keys.model.identity_history import KnownIdentity
from mfpsecd.wipe.backends.disks import SysfsDiskInventory
from mfpsecd.wipe.backends.media_purge import DevicePurger
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter
from mfpsecd.wipe.certificates import DeviceName
from mfpsecd.wipe.ports import (
    MediaInfo,
    MediaPurger,
    OverwriteTarget,
    PassSpec,
    WipeProgress,
)
from mfpsecd.wipe.service import WipeService, WipeSettings
from tests.support.fakeclock import FakeClock

ENGINEER = Subject(origin="cli", user="ce1", role="service")
SIZE = (6 << 20) + 4096  # one full chunk, a partial one


def image_disks(size: int = SIZE) -> list[DiskSection]:
    return [
        DiskSection(
            id="hdd0",
            path="disks/hdd0.img",
            medium=MediumKind.HDD,
            sanitizable=True,
            size_bytes=size,
        ),
        DiskSection(
            id="ssd0",
            path="disks/ssd0.img",
            medium=MediumKind.SSD,
            sanitizable=True,
            size_bytes=size,
        ),
        DiskSection(id="sys0", path="disks/sys0.img", medium=MediumKind.HDD, size_bytes=size),
    ]


class _SteppedTarget:
    """A target whose passes and read-backs first run the stepper's coroutine."""

    def __init__(self, inner: OverwriteTarget, stepper: SteppedOverwriter) -> None:
        self._inner = inner
        self._stepper = stepper
        self.size = inner.size

    def new_progress(self) -> WipeProgress:
        return self._inner.new_progress()

    def write_pass(
        self, start: int, end: int, spec: PassSpec, progress: WipeProgress, sync_every: int
    ) -> None:
        self._stepper.step(end < self.size)
        self._inner.write_pass(start, end, spec, progress, sync_every)

    def verify(self, start: int, end: int, spec: PassSpec, progress: WipeProgress) -> None:
        self._stepper.step(end < self.size)
        self._inner.verify(start, end, spec, progress)

    def close(self) -> None:
        self._inner.close()


class SteppedOverwriter:
    """The native overwrite engine, with a coroutine of the test run before each pass and
    read-back of a job (step 0, 1, ... of the target as opened; the medium marker's
    writes and checks, which end at the medium's end, are not steps): to look at what
    the previous pass left, to change a block before the read-back, or to hold a pass.
    The engine calls come from the service's worker threads; the coroutine runs on the
    event loop the stepper was made on, and the pass waits for it."""

    def __init__(self, before_step: Callable[[int], Coroutine[Any, Any, None]]) -> None:
        self._inner = NativeOverwriter()
        self._before = before_step
        self._loop = asyncio.get_running_loop()
        self._steps = 0

    def step(self, is_step: bool) -> None:
        if not is_step:
            return
        n, self._steps = self._steps, self._steps + 1
        asyncio.run_coroutine_threadsafe(self._before(n), self._loop).result()

    def open(self, info: MediaInfo) -> OverwriteTarget:
        self._steps = 0
        return _SteppedTarget(self._inner.open(info), self)

    def open_file(self, path: Path) -> OverwriteTarget:
        return self._inner.open_file(path)

    def new_key(self) -> bytes:
        return self._inner.new_key()


@dataclass
class Stack:
    wipe: WipeService
    auditor: Auditor
    state: SqliteState
    dev: Path
    key: ec.EllipticCurvePrivateKey
    clock: FakeClock
    health: HealthRegistry

    def image(self, disk: str) -> Path:
        return self.dev / "disks" / f"{disk}.img"


def key_signer(
    key: ec.EllipticCurvePrivateKey,
) -> Callable[[bytes], Awaitable[tuple[bytes, bytes] | None]]:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    async def sign(digest: bytes) -> tuple[bytes, bytes] | None:
        return key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))), spki

    return sign


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def identities_of(key: ec.EllipticCurvePrivateKey) -> Callable[[], Awaitable[list[KnownIdentity]]]:
    """A device whose identity key is this one, with no history."""
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    async def identities() -> list[KnownIdentity]:
        return identity_history.trusted(spki, [])

    return identities


@asynccontextmanager
async def stack(
    tmp: Path,
    *,
    size: int = SIZE,
    settings: WipeSettings | None = None,
    before_step: Callable[[int], Coroutine[Any, Any, None]] | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    signer: Callable[[bytes], Awaitable[tuple[bytes, bytes] | None]] | None = None,
    disks: list[DiskSection] | None = None,
    dev_root: Path | None = None,
    purger: MediaPurger | None = None,
    clock: FakeClock | None = None,
) -> AsyncIterator[Stack]:
    """The service on image files (simulated), or on real block devices: disks named
    relative to dev_root (e.g. a loop device under /dev)."""
    clock = clock or FakeClock()
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    health = HealthRegistry(clock)
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    simulated = dev_root is None
    dev_root = dev_root or tmp / "dev"
    # Like the simulated board: a sys_root of its own (that does not exist), while the
    # image files attach to the host's loop devices (host_sys_root, /sys).
    paths = Paths(
        state_dir=tmp,
        run_dir=tmp,
        dev_root=dev_root,
        sys_root=tmp / "sys" if simulated else Path("/sys"),
    )
    key = key or ec.generate_private_key(ec.SECP256R1())
    inventory = SysfsDiskInventory(disks or image_disks(size), paths, simulated=simulated)
    wipe = WipeService(
        state,
        inventory,
        NativeOverwriter() if before_step is None else SteppedOverwriter(before_step),
        auditor,
        clock,
        signer=signer or key_signer(key),
        identities=identities_of(key),
        device=DeviceName("MFP-SIM", "SIM-0001", "sim"),
        tool="mfpsecd test",
        settings=settings or WipeSettings(poll_s=0.01),
        purger=purger or DevicePurger(),
        health=health,
    )
    await wipe.start()
    try:
        yield Stack(wipe, auditor, state, dev_root, key, clock, health)
    finally:
        await wipe.stop()
        await auditor.stop()
        await state.close()


async def finished(wipe: WipeService, job_id: str) -> str:
    async for view in wipe.watch(job_id):
        last = view
    return last.state
