"""The key chain's backends picked by the board profile, and how the chain's start and
its identity key reach the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mfpsecd.audit.checkpoints import Signer
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import TpmBackend
from mfpsecd.base.errors import MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.state import StateStore
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.keys.backends.swtpm import SwtpmProcess
from mfpsecd.keys.backends.tpm2 import Tpm2Backend
from mfpsecd.keys.backup import BackupResult
from mfpsecd.keys.backup_schedule import BackupScheduler, Schedule
from mfpsecd.keys.chain import ChainState, KeyChain
from mfpsecd.keys.ports import BackupTargetWatcher, Tpm
from mfpsecd.keys.secrets import SecretStore
from mfpsecd.keys.targets import resolve_target


async def make_tpm(board: Board) -> tuple[SwtpmProcess | None, Tpm]:
    """The board's TPM: a kernel device, a swtpm the board starts itself, or none."""
    spec, paths = board.profile.tpm, board.paths
    if spec.backend is TpmBackend.NONE:
        return None, SoftwareKeys(paths.state_dir)
    if spec.backend is TpmBackend.SWTPM:
        swtpm = SwtpmProcess(paths.state_dir / "tpm")
        tcti = await swtpm.start()
        return swtpm, Tpm2Backend(tcti, "swtpm")
    device = paths.dev_root / (spec.device or "tpmrm0")
    return None, Tpm2Backend(f"device:{device}", "device")


async def audit_key_chain(auditor: Auditor, chain: KeyChain) -> None:
    """How the key chain came up: unlocked (or locked, and why); software mode, if so."""
    facts = await chain.facts()
    if chain.provisioned is not None:  # FCS_CKM.1: this start created the key chain
        await auditor.record(
            EventType.KEYS_PROVISION,
            Outcome.SUCCESS if chain.provisioned else Outcome.FAILURE,
            DAEMON,
            "key chain",
            tpm=facts.tpm_backend,
            reason=facts.reason,
            wrapping=facts.wrapping_fingerprint[:16],
            identity=facts.identity_fingerprint[:16],
            bound_to=facts.bound_to,
        )
    if facts.software_keys:
        await auditor.record(
            EventType.KEYS_SOFTWARE_MODE,
            Outcome.SUCCESS,
            DAEMON,
            "key chain",
            reason="board has no TPM (tpm.backend = none)",
        )
    ok = facts.state is ChainState.READY
    await auditor.record(
        EventType.KEYS_UNLOCK,
        Outcome.SUCCESS if ok else Outcome.FAILURE,
        DAEMON,
        "master key",
        generation=facts.master_generation,
        tpm=facts.tpm_backend,
        reason=facts.reason,
        fingerprint=facts.wrapping_fingerprint[:16],
    )


def identity_signer(chain: KeyChain) -> Signer:
    """Audit checkpoints are signed by the device identity key (in the TPM) when the key
    chain is up; otherwise they are stored unsigned (and verify says so)."""

    async def sign(digest: bytes) -> tuple[bytes, bytes] | None:
        if chain.state is not ChainState.READY:
            return None
        return await chain.sign_digest(digest), chain.identity_public_der

    return sign


def identity_fingerprints(chain: KeyChain) -> Callable[[], Awaitable[frozenset[str]]]:
    """The keys an audit checkpoint may be signed by: this device's identity, now and
    every earlier one its identity history proves (a restore onto a new TPM)."""

    async def known() -> frozenset[str]:
        return frozenset(i.fingerprint for i in await chain.identities())

    return known


def make_backup_scheduler(
    chain: KeyChain,
    secrets: SecretStore,
    state: StateStore,
    clock: Clock,
    *,
    targets: BackupTargetWatcher,
    health: HealthRegistry,
    auditor: Auditor,
) -> BackupScheduler:
    """The scheduled key backup, each run recorded in the audit log (FCS_CKM.1)."""

    async def record(
        schedule: Schedule, result: BackupResult | None, error: MfpsecError | None
    ) -> None:
        if result is not None:
            await auditor.record(
                EventType.KEYS_BACKUP,
                Outcome.SUCCESS,
                DAEMON,
                schedule.target,
                schedule="run",
                path=str(result.path),
                fingerprint=result.fingerprint,
            )
        else:
            await auditor.record(
                EventType.KEYS_BACKUP,
                Outcome.FAILURE,
                DAEMON,
                schedule.target,
                schedule="run",
                error=schedule.last_error,
                retry_at=schedule.next_at,
            )

    return BackupScheduler(
        chain,
        secrets,
        state,
        clock,
        resolve=lambda target: resolve_target(targets, target),
        health=health,
        record=record,
    )
