"""Wiring of the notifier (mail and SNMP alerts), for the daemon and for the two boot-time
commands: `fw-verify --boot` keeps the alert for a failed verification in the outbox
(it runs before the network), and `fw-alert`, the safe state's only service in enhanced
mode, sends what it can from there."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mfpsecd.alerts.channels import AgentxChannel, MailSettings, SnmpSettings
from mfpsecd.alerts.notifier import Notifier, SecretSource
from mfpsecd.alerts.outbox import Alert, AlertOutbox
from mfpsecd.alerts.rules import DEFAULT_RULES, Rule
from mfpsecd.audit.events import EventType
from mfpsecd.audit.session_failures import SessionFailures
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import Config
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.base.state import StateStore
from mfpsecd.base.state_lock import lock_state_dir


def alert_rules(cfg: Config) -> list[Rule]:
    """The configured rules ([[notify.rules]]), else the defaults: what the notifier
    mails and traps, and what the panel's event stream calls an alert."""
    if cfg.notify.rules is None:
        return list(DEFAULT_RULES)
    else:
        try:
            return [
                Rule(
                    r.name,
                    frozenset(EventType(e) for e in r.events),
                    r.failures_only,
                    r.threshold,
                    r.window_s,
                    r.min_interval_s,
                    r.phase,
                    except_phase=r.except_phase,
                    object=r.object,
                    by=r.by,
                )
                for r in cfg.notify.rules
            ]
        except ValueError as exc:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"notify.rules: {exc}",
                key="notify.rules",
                reason=str(exc),
            ) from None


def has_channel(cfg: Config) -> bool:
    """Whether any alert channel is configured: mail, direct traps, traps through snmpd."""
    return (
        cfg.notify.mail is not None
        or cfg.notify.snmp is not None
        or bool(cfg.snmp.agentx_socket and cfg.snmp.traps)
    )


def make_notifier(
    cfg: Config,
    clock: Clock,
    health: HealthRegistry,
    device: str,
    state: StateStore,
    *,
    secrets: SecretSource | None,
    failures: SessionFailures | None = None,
    agentx: Callable[[Alert], Awaitable[None]] | None = None,
    agentx_ready: Callable[[], bool] = lambda: False,
) -> Notifier | None:
    """None when no channel is configured. Without secrets (the boot commands, whose
    key chain is not open), channels that need stored credentials wait for the daemon;
    without agentx (the daemon's AgentX session), so do the traps through snmpd."""
    mail, snmp = cfg.notify.mail, cfg.notify.snmp
    if not has_channel(cfg):
        return None
    if (
        snmp is not None
        and snmp.version == "v3"
        and not (snmp.user and snmp.engine_id and snmp.auth_secret and snmp.priv_secret)
    ):
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            "notify.snmp: v3 needs user, engine_id, auth_secret and priv_secret",
            key="notify.snmp",
            reason="incomplete",
        )
    rules = alert_rules(cfg)
    return Notifier(
        rules,
        None
        if mail is None
        else MailSettings(
            mail.host,
            mail.port,
            mail.sender,
            tuple(mail.recipients),
            mail.starttls,
            mail.ca_file,
            username=mail.username,
            password_secret=mail.password_secret,
        ),
        clock,
        health,
        device=device,
        outbox=AlertOutbox(state),
        snmp=None
        if snmp is None
        else SnmpSettings(
            snmp.host,
            snmp.port,
            snmp.version,
            user=snmp.user,
            engine_id=snmp.engine_id or "",
            auth_protocol=snmp.auth_protocol,
            priv_protocol=snmp.priv_protocol,
            auth_secret=snmp.auth_secret,
            priv_secret=snmp.priv_secret,
            community_secret=snmp.community_secret,
        ),
        agentx=AgentxChannel(cfg.snmp.agentx_socket, agentx, agentx_ready)
        if cfg.snmp.agentx_socket and cfg.snmp.traps
        else None,
        enterprise=cfg.snmp.enterprise,
        secrets=secrets,
        failures=failures,
        expire_s=cfg.notify.expire_hours * 3600.0,
    )


@dataclass(frozen=True)
class Delivery:
    mails: int  # sent by this process
    traps: int
    waiting: list[Alert]  # still owed to some channel
    retry: bool  # a channel failed to take one: worth another try later


async def send_waiting(
    cfg: Config, board: Board, clock: Clock, *, retry_for_s: float
) -> Delivery | None:
    """fw-alert in the safe state: the outbox to every channel this process can use,
    retried with a growing delay for up to retry_for_s (the network may come up late).
    None when no channel is configured."""
    if not has_channel(cfg):
        return None
    lock = lock_state_dir(board.paths.state_dir)  # a running daemon sends them itself
    state = SqliteState(board.paths.state_db)
    try:
        await state.open()
        notifier = make_notifier(
            cfg, clock, HealthRegistry(clock), board.profile.board.name, state, secrets=None
        )
        assert notifier is not None
        deadline = clock.monotonic() + retry_for_s
        delay = 1.0
        while (failed := await notifier.deliver()) and clock.monotonic() + delay <= deadline:
            await clock.sleep(delay)
            delay = min(delay * 2, 60.0)
        return Delivery(
            notifier.sent, notifier.traps, await AlertOutbox(state).pending(), bool(failed)
        )
    finally:
        await state.close()
        os.close(lock)
