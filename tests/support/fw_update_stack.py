"""The firmware service on real engines (software keys or a swtpm, a real audit log and
state database, slots in a temporary directory): the stack the update tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from cryptography import x509

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.firmware.backends.native_hasher import NativeTreeHasher
from mfpsecd.firmware.model import slots as fw_slots
from mfpsecd.firmware.service import BindNextBoot, FirmwareService, FirmwareSettings
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.keys.ports import Tpm
from tests.support.fakeclock import FakeClock
from tests.support.firmware_bundle import MODEL
from tests.support.firmware_pki import NOW, ROOT

ENGINEER = Subject(origin="cli", user="ce1", role="service")
COUNTER = 0x01000123
PCR = 14


@dataclass
class Stack:
    fw: FirmwareService
    auditor: Auditor
    tpm: Tpm
    root: Path
    db: SqliteState

    async def update(self, archive: Path, subject: Subject = ENGINEER) -> str:
        with archive.open("rb") as f:
            return (await self.fw.update(f, subject)).slot

    async def events(self, type_: EventType) -> list[dict[str, Any]]:
        records = await self.auditor.query(AuditQuery(types=frozenset({type_})))
        return [msgspec.to_builtins(r) for r in records]

    def state(self) -> fw_slots.BootState:
        return self.fw.boot_state()


@asynccontextmanager
async def stack(
    root: Path,
    tpm: Tpm | None = None,
    roots: tuple[x509.Certificate, ...] = (ROOT,),
    bind_next_boot: BindNextBoot | None = None,
) -> AsyncIterator[Stack]:
    clock = FakeClock(NOW)
    state = SqliteState(root / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(root / "audit"), clock, HealthRegistry(clock), state)
    await auditor.start()
    tpm = tpm or SoftwareKeys(root)
    await tpm.open()
    settings = FirmwareSettings(
        model=MODEL,
        roots=roots,
        slots_dir=root / "slots",
        run_dir=root / "run",
        counter_index=COUNTER,
        pcr=PCR,
        boot_tries=3,
        max_bundle_bytes=64 << 20,
    )
    fw = FirmwareService(
        settings,
        tpm=tpm,
        hasher=NativeTreeHasher(2),
        clock=clock,
        auditor=auditor,
        state=state,
        bind_next_boot=bind_next_boot,
    )
    try:
        yield Stack(fw, auditor, tpm, root, state)
    finally:
        await auditor.stop()
        await state.close()
