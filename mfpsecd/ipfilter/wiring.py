"""Wiring of the IP filter from the board profile, and `mfpsecd net-restore`, which the
boot unit runs before the network comes up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.model.throttle import Throttle
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import BoardProfile, Config
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.state import StateStore
from mfpsecd.base.supervisor import Supervisor
from mfpsecd.base.transfer import TransferLimits
from mfpsecd.ipfilter.backends.nftables_filter import NftablesFilter
from mfpsecd.ipfilter.backends.rtnetlink import RtnetlinkAddresses
from mfpsecd.ipfilter.flood_bans import BanPolicy, FloodBans
from mfpsecd.ipfilter.model import ruleset as nf
from mfpsecd.ipfilter.service import NetfilterService, NetSettings

log = structlog.get_logger("mfpsecd.netfilter")
RULES_FILE = "netfilter.json"


def board_netns(profile: BoardProfile) -> str | None:
    """The namespace the board's interfaces live in (one for all of them), or None."""
    spaces = {n.netns for n in profile.nics}
    if len(spaces) > 1:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            key="nics",
            reason="all interfaces must be in the same network namespace",
        )
    return next(iter(spaces), None)


def services(profile: BoardProfile) -> tuple[nf.Service, ...]:
    if not profile.net_services:
        return nf.DEFAULT_SERVICES
    out = []
    for s in profile.net_services:
        ports = []
        for text in s.ports:
            proto, _, number = text.partition("/")
            if not 1 <= int(number) <= 65535:
                raise MfpsecError(
                    ErrorCode.CONFIG_INVALID,
                    key=f"net_services.{s.name}",
                    reason=f"port {number} out of range",
                )
            ports.append((proto, int(number)))
        out.append(nf.Service(s.name, tuple(ports)))  # type: ignore[arg-type]
    return tuple(out)


def _device(profile: BoardProfile) -> nf.Device:
    return nf.Device(
        tuple(n.name for n in profile.nics if n.kind == "wired"),
        tuple(n.name for n in profile.nics if n.kind == "wireless"),
    )


def make_netfilter(
    cfg: Config,
    board: Board,
    *,
    state: StateStore,
    auditor: Auditor,
    clock: Clock,
    health: HealthRegistry,
) -> NetfilterService | None:
    profile = board.profile
    if not profile.nics:
        return None
    netns = board_netns(profile)
    dev = _device(profile)
    return NetfilterService(
        state,
        NftablesFilter(netns),
        RtnetlinkAddresses(netns, (*dev.wired, *dev.wireless)),
        auditor=auditor,
        clock=clock,
        health=health,
        settings=NetSettings(
            services(profile),
            dev.wired,
            dev.wireless,
            board.paths.state_dir / RULES_FILE,
            summary_interval_s=cfg.network.refused_summary_s,
            transfers=TransferLimits.of(cfg.transfers),
        ),
    )


async def restore(board: Board) -> str:
    """The last applied ruleset (the daemon keeps it in the state directory), or, when
    there is none or it does not apply, the restrictive one. → what was applied."""
    profile = board.profile
    filt = NftablesFilter(board_netns(profile))
    try:
        # Idempotent: a table already loaded (a restart of the unit, a second `make run`)
        # is replaced in place, without declaring its counting sets again.
        loaded = await filt.present()

        def batch(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return nf.for_existing_table(commands) if loaded else commands

        path: Path = board.paths.state_dir / RULES_FILE
        try:
            commands: list[dict[str, Any]] = json.loads(path.read_bytes())["nftables"]
            await filt.apply(batch(commands))
            return f"the last applied rules ({path})"
        except (OSError, ValueError, KeyError, TypeError, MfpsecError) as exc:
            log.warning("netfilter_restore_fallback", reason=str(exc))
        await filt.apply(batch(nf.restrictive(_device(profile))))
        return "the restrictive rules (nothing reaches the device but loopback and replies)"
    finally:
        filt.close()


async def start_netfilter(
    network: NetfilterService, health: HealthRegistry, auditor: Auditor
) -> None:
    """Apply the rules at start. A failure is not fatal: the kernel keeps the rules it
    has (the boot unit's), status and the audit log say why, and every change is refused
    until it works."""
    try:
        await network.start()
    except MfpsecError as exc:
        health.set("netfilter", HealthState.FAILED, exc.message)
        await auditor.record(
            EventType.NETFILTER_CHANGE,
            Outcome.FAILURE,
            DAEMON,
            "ip filter",
            step="start",
            error=exc.code.wire_name,
            reason=str(exc.params.get("reason", "")),
        )


def supervise_netfilter(
    supervisor: Supervisor,
    network: NetfilterService,
    cfg: Config,
    *,
    throttle: Throttle,
    auditor: Auditor,
    clock: Clock,
) -> None:
    """The filter's drift watch, and the bans of flooding sources when configured."""
    supervisor.add("netfilter-watch", network.run)
    if cfg.network.ban_s:
        bans = FloodBans(
            network, throttle, BanPolicy(cfg.network.ban_s, cfg.network.ban_max_s), clock
        )
        auditor.add_listener(bans.offer)
        supervisor.add("flood-bans", bans.run)


async def stop_netfilter(network: NetfilterService) -> None:
    """The boot rules file catches up with the last edits; the rules stay in the kernel."""
    try:
        await network.flush()
    except (MfpsecError, OSError) as exc:
        log.error("netfilter_flush_failed", error=str(exc))
    network.close()
