"""`mfpsec status`: the daemon's version, board, state and component health;
`mfpsec posture`: the S-1 security posture, as the panel shows it; `mfpsec events`: the
S-2 event stream, resumed after a lost connection."""

from __future__ import annotations

import datetime as dt

import click
import msgspec

from mfpsecd.base.errors import MfpsecError
from mfpsecd.base.escape import shown
from mfpsecd.base.health import HealthState
from mfpsecd.base.posture import PostureState
from mfpsecd.cli.common import Daemon, echo_json, reports_errors
from mfpsecd.client import NoParams, follow
from mfpsecd.system import api as system
from mfpsecd.system.api import DaemonState, Event, Posture, Status

_STATE_COLOUR = {
    HealthState.OK: "green",
    HealthState.STARTING: "yellow",
    HealthState.BACKOFF: "yellow",
    HealthState.FAILED: "red",
    HealthState.STOPPED: "yellow",
    HealthState.DEGRADED: "yellow",
}
# WatchStatus sends at least every 15 s: four periods without a reply is a lost connection.
_STATUS_SILENCE_S = 60.0
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
    if not watch:
        with daemon.connect() as conn:
            s = conn.call(system.GET_STATUS)
        echo_json(s) if as_json else click.echo(render(s))
        return
    # A crash does not end the watch: it reconnects. A clean stop does (a restart too):
    # the stream's last reply says "stopping".
    for s in follow(
        daemon.reconnector(), system.WATCH_STATUS, NoParams(), silence_s=_STATUS_SILENCE_S
    ):
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


def render_event(e: Event) -> str:
    what = click.style(e.alert, fg="red", bold=True) if e.alert else e.type
    line = f"{e.time} #{e.seq} {what} {e.outcome} {shown(e.object)}"
    if e.user:
        line += f" by {shown(e.user)}"
    if e.details:
        line += " " + " ".join(f"{k}={shown(v)}" for k, v in sorted(e.details.items()))
    return line


# A stream that stays silent for this many keep-alive periods is taken for dead.
_SILENT_PERIODS = 3


@click.command()
@click.option(
    "--after",
    type=click.IntRange(min=-1),
    default=-1,
    help="Resume after this sequence number (the last one you saw); 0: everything the log "
    "still holds; -1: from now on.",
)
@click.option("--keepalive", type=click.IntRange(5, 300), default=30, show_default=True)
@click.option("--no-follow", is_flag=True, help="Stop once caught up instead of following.")
@click.option("--json", "as_json", is_flag=True, help="One JSON reply per line.")
@click.pass_obj
@reports_errors
def events(daemon: Daemon, *, after: int, keepalive: int, no_follow: bool, as_json: bool) -> None:
    """Follow the alerts and security events as they are recorded. A lost connection is
    resumed where it left off, without gaps."""
    last = after

    def lost(_: MfpsecError) -> None:
        click.echo(f"(connection lost: resuming after #{last})", err=True)

    params = system.WatchEventsParams(after, keepalive)
    silence = keepalive * _SILENT_PERIODS
    for batch in follow(
        daemon.reconnector(), system.WATCH_EVENTS, params, silence_s=silence, on_lost=lost
    ):
        last = batch.last_seq
        if as_json:  # JSON Lines: one reply per line, for a pipe
            click.echo(msgspec.json.encode(batch).decode())
        else:
            for e in batch.events:
                click.echo(render_event(e))
            if batch.missed:
                click.echo(f"({batch.missed} event(s) no longer in the log)", err=True)
        if no_follow and batch.behind == 0:
            return
