"""The job store on a real state store and key chain, without the daemon: what the
job-store tests share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.paths import Paths
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.secrets import SecretStore
from mfpsecd.scan.model.outcome import Source
from mfpsecd.scan.service import VirusScan
from mfpsecd.store.backends.native_objects import NativeObjectCipher
from mfpsecd.store.service import JobStore, ObjectKind, Requester, StoreSettings
from mfpsecd.wipe.backends.disks import SysfsDiskInventory
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter
from mfpsecd.wipe.certificates import DeviceName
from mfpsecd.wipe.model.overwrite_plan import Medium
from mfpsecd.wipe.service import WipeService, WipeSettings
from tests.support.fakeclock import FakeClock

ALICE = Requester("alice")


BOB = Requester("bob")


ADMIN = Requester("root-admin", administrator=True)


CLI = Subject(origin="cli", user="alice", role="user")


SEG = 1 << 12


@dataclass
class Stack:
    store: JobStore
    chain: KeyChain
    auditor: Auditor
    state: SqliteState
    clock: FakeClock
    root: Path
    directory: Path
    health: HealthRegistry
    scan: VirusScan | None = None

    @property
    def objects(self) -> Path:
        return self.directory / "objects"

    async def events(self, kind: EventType) -> list[dict[str, object]]:
        records = await self.auditor.query(AuditQuery(types=frozenset({kind}), limit=0))
        return [{"object": r.object, "outcome": r.outcome.value, **r.details} for r in records]


@asynccontextmanager
async def stack(
    root: Path,
    medium: Medium = Medium.HDD,
    settings: StoreSettings | None = None,
    directory: Path | None = None,
    not_in_place: str = "",
    scan: Callable[..., VirusScan] | None = None,
) -> AsyncIterator[Stack]:
    """scan: makes the virus scan from (clock=, health=, auditor=)."""
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(root / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(root / "audit"), clock, health, state)
    await auditor.start()
    chain = KeyChain(state, SoftwareKeys(root), NativeKeyCrypto(), clock, health)
    SecretStore(state, chain, clock)
    await chain.start()
    paths = Paths(state_dir=root, run_dir=root, dev_root=root / "dev", sys_root=Path("/sys"))

    async def no_signer(digest: bytes) -> None:
        return None

    wipe = WipeService(
        state,
        SysfsDiskInventory([], paths, simulated=False),
        NativeOverwriter(),
        auditor,
        clock,
        signer=no_signer,
        identities=chain.identities,
        device=DeviceName("t", "t", "t"),
        tool="test",
        settings=WipeSettings(temporary_mode=2),
    )
    scanner = None if scan is None else scan(clock=clock, health=health, auditor=auditor)
    store = JobStore(
        state,
        chain,
        NativeObjectCipher(threads=2, segment_shift=12),
        auditor,
        clock,
        crypto=NativeKeyCrypto(),
        job_data=wipe.job_data,
        directory=directory or root / "store",
        medium=medium,
        settings=settings,
        not_in_place=not_in_place,
        scan=scanner,
    )
    await store.start()
    try:
        yield Stack(
            store, chain, auditor, state, clock, root, directory or root / "store", health, scanner
        )
    finally:
        await auditor.stop()
        await chain.close()
        await state.close()


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def put_bytes(
    s: Stack,
    data: bytes,
    *,
    owner: str = "alice",
    kind: ObjectKind = ObjectKind.SPOOL,
    name: str = "page.pdf",
    job: str = "job-1",
    source: Source = Source.PRINT,
) -> str:
    """Through a pipe, written by another thread, as the image pipeline would."""
    r, w = os.pipe()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), os.fdopen(w, "wb") as f:
            f.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        info = await s.store.put(r, owner=owner, job=job, kind=kind, name=name, source=source)
    finally:
        os.close(r)  # a failed put stops reading: the feeder then gets EPIPE
        feeder.join()
    assert info.size == len(data)
    return info.id


async def read_bytes(s: Stack, object_id: str, who: Requester = ALICE) -> bytes:
    path = s.root / f"out-{object_id}"
    with path.open("w+b") as f:
        n = await s.store.read(object_id, who, f.fileno(), CLI)
        f.seek(0)
        data = f.read()
    assert n == len(data)
    path.unlink()
    return data
