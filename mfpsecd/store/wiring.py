"""The job store built from the configuration and the board profile."""

from __future__ import annotations

import structlog

from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import Config
from mfpsecd.base.mounts import mount_of
from mfpsecd.base.state import StateStore
from mfpsecd.base.transfer import TransferLimits
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.ports import KeyCrypto
from mfpsecd.scan.service import VirusScan
from mfpsecd.store.backends.native_objects import NativeObjectCipher
from mfpsecd.store.service import JobStore, StoreSettings
from mfpsecd.wipe.job_data import JobDataOverwriter
from mfpsecd.wipe.model.overwrite_plan import overwrite_defeated_by

log = structlog.get_logger("mfpsecd.store")


def make_store(
    cfg: Config,
    board: Board,
    state: StateStore,
    chain: KeyChain,
    auditor: Auditor,
    *,
    clock: Clock,
    crypto: KeyCrypto,
    job_data: JobDataOverwriter,
    scan: VirusScan | None = None,
) -> JobStore:
    st, tr = cfg.store, cfg.transfers
    return JobStore(
        state,
        chain,
        NativeObjectCipher(threads=st.threads, segment_shift=st.segment_kib.bit_length() + 9),
        auditor,
        clock,
        crypto=crypto,
        job_data=job_data,
        directory=board.paths.job_store,
        medium=board.profile.store.medium,
        settings=StoreSettings(
            box_retention_s=st.box_retention_days * 86400.0,
            secure_print_timeout_s=st.secure_print_timeout_hours * 3600.0,
            encrypted_pdf_retention_s=st.encrypted_pdf_retention_days * 86400.0,
            id_print_timeout_s=st.id_print_timeout_hours * 3600.0,
            sweep_interval_s=st.sweep_interval_s,
            transfers=TransferLimits.of(tr),
            workers=tr.store_workers,
            per_owner=tr.store_per_owner,
        ),
        not_in_place=_store_filesystem(board),
        scan=scan,
    )


def encryption_text(cfg: Config) -> str:
    """How objects are encrypted, as GetStoreStatus and the health say it."""
    return (
        f"AES-256-GCM in {cfg.store.segment_kib} KiB segments, a random 256-bit key "
        "per object sealed under the master key"
    )


def _store_filesystem(board: Board) -> str:
    """Why W-1's in-place overwrite cannot work where the job store lives ("" if it can)."""
    store = board.paths.job_store
    store.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = mount_of(board.paths.proc_root / "self" / "mountinfo", store)
    if found is None:
        return ""
    reason = overwrite_defeated_by(found.fstype, found.options)
    if reason:
        log.warning(
            "store_overwrite_ineffective", directory=str(store), mount=found.point, reason=reason
        )
    return reason
