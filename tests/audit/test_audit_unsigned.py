"""An unsigned checkpoint vouches for nothing: a process that cannot sign (the boot unit,
the daemon while its key chain is locked) must not store one over the signed one, or the
next start reports the device's own log as `checkpoint unsigned` (tampered)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.checkpoints import Signer
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.sqlite_state import SqliteState
from tests.support.fakeclock import FakeClock

IDENTITY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_DER = IDENTITY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
WHO = Subject(origin="panel", user="alice")


async def _sign(digest: bytes) -> tuple[bytes, bytes] | None:
    return IDENTITY.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))), PUBLIC_DER


async def _locked(digest: bytes) -> tuple[bytes, bytes] | None:
    return None  # the key chain is not up


async def _trusted() -> frozenset[str]:
    return frozenset({hashlib.sha256(PUBLIC_DER).hexdigest()})


async def _run(tmp: Path, signer: Signer | None) -> tuple[bool, HealthState]:
    """One process: start, check the newest checkpoint as the daemon does, write, stop."""
    clock = FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.db")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    vouched = True
    if signer is not None:
        auditor.set_signer(signer)
        auditor.set_trust(_trusted)
        vouched = await auditor.check_checkpoint()
    for i in range(3):
        await auditor.record(EventType.MANAGEMENT, Outcome.SUCCESS, WHO, f"setting {i}")
    audit = health.get("audit")
    assert audit is not None
    await auditor.stop()
    await state.close()
    return vouched, audit.state


def test_processes_that_cannot_sign_leave_the_signed_checkpoint_in_place(tmp_path: Path) -> None:
    async def scenario() -> None:
        assert await _run(tmp_path, _sign) == (True, HealthState.OK)
        assert await _run(tmp_path, None) == (True, HealthState.OK)  # the boot unit
        assert await _run(tmp_path, _sign) == (True, HealthState.OK)
        assert await _run(tmp_path, _locked) == (True, HealthState.OK)  # chain locked
        assert await _run(tmp_path, _sign) == (True, HealthState.OK)

    asyncio.run(scenario())


def test_a_boot_unit_before_the_first_key_leaves_no_unsigned_checkpoint(tmp_path: Path) -> None:
    """A fresh device: the boot unit writes the first records before any key exists; the
    daemon's first start must not find an unsigned checkpoint and call its log tampered."""

    async def scenario() -> None:
        assert await _run(tmp_path, None) == (True, HealthState.OK)  # the boot unit
        assert await _run(tmp_path, _sign) == (True, HealthState.OK)  # the first start
        assert await _run(tmp_path, _sign) == (True, HealthState.OK)

    asyncio.run(scenario())
