"""Wiring of sanitization from the configuration and the board profile."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from mfpsecd.audit.checkpoints import Signer
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import BoardKind, Config
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.state import StateStore
from mfpsecd.keys.model.identity_history import KnownIdentity
from mfpsecd.wipe.backends.disks import SysfsDiskInventory
from mfpsecd.wipe.backends.helper_purger import HelperPurger
from mfpsecd.wipe.backends.media_purge import DevicePurger
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter
from mfpsecd.wipe.certificates import DeviceName
from mfpsecd.wipe.ports import MediaPurger
from mfpsecd.wipe.service import WipeService, WipeSettings

log = structlog.get_logger("mfpsecd.wipe")


def make_wipe(
    cfg: Config,
    board: Board,
    state: StateStore,
    auditor: Auditor,
    *,
    clock: Clock,
    health: HealthRegistry,
    signer: Signer,
    identities: Callable[[], Awaitable[list[KnownIdentity]]],
    tool: str,
) -> WipeService:
    """The sanitization service on the board's disks, the native overwrite engine and the
    media's own sanitize commands; certificates signed by the device identity."""
    simulated = board.profile.board.kind is BoardKind.SIMULATED
    return WipeService(
        state,
        SysfsDiskInventory(board.profile.disks, board.paths, simulated=simulated),
        NativeOverwriter(),
        auditor,
        clock,
        signer=signer,
        identities=identities,
        device=device_name(board),
        tool=tool,
        health=health,
        settings=WipeSettings(
            temporary_mode=cfg.wipe.temporary_mode,
            sync_every=cfg.wipe.checkpoint_mib << 20,
            poll_s=cfg.wipe.progress_interval_ms / 1000,
            verify_fraction=cfg.wipe.verify_percent / 100,
            purge_bound_s=cfg.wipe.purge_timeout_min * 60.0,
            factory_mode=cfg.wipe.factory_mode,
        ),
        purger=purger(cfg, board),
    )


# Where mfpsecd-purge.socket listens (the shipped configuration names it too).
INSTALLED_HELPER = Path("/run/mfpsecd/purge.sock")
_CAP_SYS_ADMIN = 21


def can_administer(proc_root: Path) -> bool:
    """Whether this process holds CAP_SYS_ADMIN (what NVMe admin commands need)."""
    try:
        for line in (proc_root / "self" / "status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    except (OSError, ValueError):
        pass
    return False


def purger(cfg: Config, board: Board) -> MediaPurger:
    """Device commands through the purge helper when one is configured (a device as
    installed), else in this process. A configuration kept from before the helper (an
    edited conffile after an upgrade) names none: a daemon that cannot send the
    commands itself then uses the installed helper's socket when it is there."""
    if cfg.wipe.purge_helper:
        return HelperPurger(Path(cfg.wipe.purge_helper))
    paths = board.paths
    if (
        board.profile.board.kind is not BoardKind.SIMULATED
        and not can_administer(paths.proc_root)
        and INSTALLED_HELPER.is_socket()
    ):
        log.warning("purge_helper_found", socket=str(INSTALLED_HELPER), key="wipe.purge_helper")
        return HelperPurger(INSTALLED_HELPER)
    return DevicePurger(sys_root=paths.sys_root, proc_root=paths.proc_root)


def device_name(board: Board) -> DeviceName:
    """The controller's model and serial number from the board profile: given there, or
    read from a file under sys_root (DMI, device tree)."""
    b = board.profile.board
    serial = b.serial
    if not serial and b.serial_file:
        try:
            raw = (board.paths.sys_root / b.serial_file).read_bytes()[:64]
        except OSError as exc:
            log.warning("board_serial_unreadable", file=b.serial_file, error=str(exc))
        else:
            # Device-tree strings end in NUL; DMI ones in a newline.
            serial = raw.decode("ascii", "replace").strip("\0\n ")
    return DeviceName(model=b.model or b.description or b.name, serial=serial, board=b.name)
