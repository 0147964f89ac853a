"""`mfpsec status`: the daemon's version, board, state and component health;
`mfpsec posture`: the S-1 security posture, as the panel shows it."""

from __future__ import annotations

import datetime as dt

import click

from mfpsecd.base.health import HealthState
from mfpsecd.base.posture import PostureState
from mfpsecd.cli.common import Daemon, echo_json, reports_errors, shown
from mfpsecd.system import api as system
from mfpsecd.system.api import DaemonState, Posture, Status

_STATE_COLOUR = {
    HealthState.OK: "green",
    HealthState.STARTING: "yellow",
    HealthState.BACKOFF: "yellow",
    HealthState.FAILED: "red",
    HealthState.STOPPED: "yellow",
    HealthState.DEGRADED: "yellow",
}
_DAEMON_COLOUR = {DaemonState.READY: "green", DaemonState.DEGRADED: "red"}


_NOTICES = {
    "administrator-unset": "no administrator password is set (first start): set one now "
    "with `mfpsec users init NAME`",
}


def render(status: Status) -> str:
    uptime = dt.timedelta(seconds=int(status.uptime_seconds))
    lines = [
        f"mfpsecd {status.version} on board {status.board} ({status.board_kind}): "
        + click.style(status.state.value, fg=_DAEMON_COLOUR.get(status.state, "yellow"), bold=True),
        f"up {uptime} since {status.started_at}; boot #{status.boot_count}, "
        f"previous shutdown: {status.previous_shutdown}",
        "",
    ]
    for notice in status.notices:
        text = _NOTICES.get(notice, notice)
        lines += [click.style("NOTICE: ", fg="red", bold=True) + text, ""]
    width = max([len("COMPONENT"), *(len(c.name) for c in status.components)])
    lines.append(f"{'COMPONENT':<{width}}  {'STATE':<8}  {'RESTARTS':>8}  DETAIL")
    for c in status.components:
        state = click.style(f"{c.state.value:<8}", fg=_STATE_COLOUR[c.state])
        lines.append(f"{c.name:<{width}}  {state}  {c.restarts:>8}  {c.detail}")
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", is_flag=True, help="Keep printing the status each time it changes.")
@click.pass_obj
@reports_errors
def status(daemon: Daemon, as_json: bool, watch: bool) -> None:
    """Show the daemon's version, board, state and the health of its components."""
    with daemon.connect() as conn:
        if not watch:
            s = conn.call(system.GET_STATUS)
            echo_json(s) if as_json else click.echo(render(s))
            return
        conn.set_timeout(None)  # a stream may be quiet for a long time
        for s in conn.call_more(system.WATCH_STATUS):
            echo_json(s) if as_json else click.echo(render(s) + "\n")


_POSTURE_COLOUR = {
    PostureState.ON: "green",
    PostureState.OFF: "red",
    PostureState.NOT_APPLICABLE: None,
    PostureState.NOT_MANAGED: "yellow",
}


def render_posture(posture: Posture) -> str:
    """One line per item (state, setting, since), and what to do under it when off."""
    width = max(len("ITEM"), *(len(i.title) for i in posture.items))
    lines = [f"{'ITEM':<{width}}  {'STATE':<14}  SETTING (SINCE)"]
    for i in posture.items:
        state = click.style(f"{i.state.value:<14}", fg=_POSTURE_COLOUR[i.state])
        since = f" (since {i.since})" if i.since else ""
        lines.append(f"{i.title:<{width}}  {state}  {shown(i.setting) or '-'}{since}")
        if i.detail:
            lines.append(f"{'':<{width}}  {'':<14}  {shown(i.detail)}")
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def posture(daemon: Daemon, as_json: bool) -> None:
    """Show the security posture: each protection, on or off, its setting and since when."""
    with daemon.connect() as conn:
        p = conn.call(system.GET_POSTURE)
    echo_json(p) if as_json else click.echo(render_posture(p))
