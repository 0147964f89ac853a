"""Remote sessions from the configuration ([remote]) and the panel's sessions (auth)."""

from __future__ import annotations

from mfpsecd.audit.service import Auditor
from mfpsecd.auth.sessions import SessionTable
from mfpsecd.base.access import Role
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import Config
from mfpsecd.base.state import StateStore
from mfpsecd.remote.model.sessions import PanelState, RemotePolicy
from mfpsecd.remote.service import PanelHooks, RemoteService


def panel_hooks(sessions: SessionTable, panel_uids: frozenset[int]) -> PanelHooks:
    """Who is logged in at the panel (the panel's uids' live sessions), and logging them
    out (R-3)."""

    def state() -> PanelState:
        live = sessions.of_uids(panel_uids)
        return PanelState(
            user=live[0].user if live else "",
            administrator=any(s.role is Role.ADMINISTRATOR for s in live),
        )

    def log_out() -> int:
        return sessions.end_uids(panel_uids, "a remote session dropped while it was shown")

    return PanelHooks(state, log_out)


def make_remote(
    cfg: Config,
    state: StateStore,
    *,
    auditor: Auditor,
    clock: Clock,
    panel: PanelHooks,
) -> RemoteService:
    r = cfg.remote
    return RemoteService(
        state,
        auditor=auditor,
        clock=clock,
        policy=RemotePolicy(
            enabled=r.enabled,
            code_length=r.code_length,
            code_ttl_s=r.code_ttl_s,
            consent_ttl_s=r.consent_ttl_s,
            idle_s=r.idle_timeout_s,
            max_s=r.max_session_s,
        ),
        panel=panel,
    )
