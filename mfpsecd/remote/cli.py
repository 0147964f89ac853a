"""`mfpsec remote …`: remote sessions and the fleet agent's mode (SPEC R-1..R-6)."""

from __future__ import annotations

import click

from mfpsecd.base.escape import shown
from mfpsecd.cli.common import Daemon, echo_json, reports_errors
from mfpsecd.remote import api


def render(r: api.Requests) -> str:
    state = "on" if r.enabled else "off (remote.enabled)"
    mode = f"manage until {r.manage_until}" if r.mode == "manage" else "monitor"
    lines = [f"remote panel sessions: {state}; fleet agent: {mode}"]
    for q in r.requests:
        left = f", {q.seconds_left} s left" if q.phase != "ended" else ""
        why = f": {shown(q.end_reason)}" if q.end_reason else ""
        lines.append(f"  {q.id}  {q.phase:<8} {shown(q.remote)}{left}{why}")
    if not r.requests:
        lines.append("  no request")
    return "\n".join(lines)


@click.group("remote")
def remote_group() -> None:
    """Remote panel sessions and the fleet agent's manage window."""


@remote_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def show(daemon: Daemon, as_json: bool) -> None:
    """Requests and sessions (never their codes: those are for the panel), and the mode."""
    with daemon.connect() as conn:
        r = conn.call(api.GET_REQUESTS)
    echo_json(r) if as_json else click.echo(render(r))


@remote_group.command("manage")
@click.argument("minutes", type=click.IntRange(0, 10080))
@click.pass_obj
@reports_errors
def manage(daemon: Daemon, minutes: int) -> None:
    """Let the fleet agent manage the device (firmware, settings, remote panel) for
    MINUTES; 0 returns it to monitor mode now."""
    with daemon.connect() as conn:
        m = conn.call(api.SET_MANAGE_WINDOW, api.WindowParams(minutes))
    click.echo(
        f"fleet agent: manage until {m.until}" if m.mode == "manage" else "fleet agent: monitor"
    )


@remote_group.command("disconnect")
@click.argument("request")
@click.pass_obj
@reports_errors
def disconnect(daemon: Daemon, request: str) -> None:
    """End a remote request or session now."""
    with daemon.connect() as conn:
        q = conn.call(api.DISCONNECT, api.RequestParams(request))
    click.echo(f"{q.id} ended: {shown(q.end_reason)}")
