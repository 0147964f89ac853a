"""Wiring of the USB port policy from the board profile and the configuration."""

from __future__ import annotations

from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import Config
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.state import StateStore
from mfpsecd.usb.backends.sysfs_usb import SysfsUsbBus
from mfpsecd.usb.service import UsbService, check_ports


def make_usb(
    cfg: Config,
    board: Board,
    *,
    state: StateStore,
    auditor: Auditor,
    clock: Clock,
    health: HealthRegistry,
) -> UsbService:
    """CONFIG_INVALID (with the key path) for a [usb] rule naming a port the board
    profile does not have."""
    ports = {p.id: p.sysfs_path for p in board.profile.usb_ports}
    check_ports(cfg.usb, ports, "usb.")
    return UsbService(
        SysfsUsbBus(board.paths.sys_root, clock),
        state,
        auditor=auditor,
        clock=clock,
        health=health,
        board_ports=ports,
        configured=cfg.usb,
    )
