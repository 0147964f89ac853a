"""`mfpsec status`: the daemon's version, board, state and component health;
`mfpsec posture`: the S-1 security posture, as the panel shows it; `mfpsec events`: the
S-2 event stream, resumed after a lost connection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import msgspec

from mfpsecd.base import optional
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.escape import shown
from mfpsecd.base.health import HealthState
from mfpsecd.base.posture import PostureState
from mfpsecd.cli.common import Daemon, echo_json, reports_errors
from mfpsecd.client import NoParams, follow
from mfpsecd.system import api as system
from mfpsecd.system import report_document
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


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def posture(ctx: click.Context, as_json: bool) -> None:
    """Show the security posture: each protection, on or off, its setting and since when.
    `report` makes the signed posture report (and its PDF), `verify` checks one."""
    if ctx.invoked_subcommand is None:
        _show_posture(ctx.obj, as_json)


@reports_errors
def _show_posture(daemon: Daemon, as_json: bool) -> None:
    with daemon.connect() as conn:
        p = conn.call(system.GET_POSTURE)
    echo_json(p) if as_json else click.echo(render_posture(p))


def render_report(r: report_document.ReportBody) -> str:
    """The security level and its checks, for a person; strings escaped."""
    # Every string is shown escaped: a report kept in a file may say anything.
    d = r.device
    lines = [
        f"security level: {click.style(shown(r.level_text), bold=True)}",
        f"device: {shown(d.model)}, serial {shown(d.serial) or 'unknown'} ({shown(d.board)})",
        f"read at: {shown(r.at)}; identity key {shown(d.identity)}",
    ]
    lines += [click.style(f"runtime issue: {shown(i)}", fg="red") for i in r.runtime_issues]
    for c in r.checks:
        mark = click.style("met    ", fg="green") if c.met else click.style("not met", fg="red")
        lines.append(f"  level {c.level}  {mark}  {shown(c.title)}: {shown(c.detail)}")
    return "\n".join(lines)


def _read_report(path: Path) -> bytes:
    """A kept report, refused before it is read whole when it is larger than any report."""
    if path.stat().st_size > system.MAX_REPORT_BYTES:
        raise MfpsecError(
            ErrorCode.SYSTEM_REPORT_INVALID, reason=f"larger than {system.MAX_REPORT_BYTES} bytes"
        )
    return path.read_bytes()


def _decoded(document: bytes) -> report_document.ReportDocument:
    try:
        return report_document.decode_document(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MfpsecError(ErrorCode.SYSTEM_REPORT_INVALID, reason=str(exc)) from None


def _write_pdf(
    doc: report_document.ReportDocument, document: bytes, pdf: Path, *, verified: bool
) -> None:
    why = optional.missing("pdf")
    if why:
        raise MfpsecError(ErrorCode.PART_UNAVAILABLE, part="pdf", reason=why)
    # reportlab is loaded only for a printable report, in this process, never the daemon's.
    from mfpsecd.system.report_pdf import render_pdf  # noqa: PLC0415

    pdf.write_bytes(render_pdf(doc, document, verified=verified))
    click.echo(f"printable PDF written to {pdf}", err=True)


@posture.command("report")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the signed report (JSON) in this file.",
)
@click.option(
    "--pdf", type=click.Path(dir_okay=False, path_type=Path), help="Render it as a PDF here."
)
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Render a report kept earlier instead of asking the daemon.",
)
@click.option(
    "--identity",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --from: check the kept report against this identity key or certificate "
    "first (else its PDF says it was not checked).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the signed document itself.")
@click.pass_obj
@reports_errors
def report(
    daemon: Daemon,
    *,
    output: Path | None,
    pdf: Path | None,
    source: Path | None,
    identity: Path | None,
    as_json: bool,
) -> None:
    """The posture as a report signed by the device identity key, graded into a security
    level (README: "Security levels")."""
    verified = True  # the daemon's own report, over its own socket
    if source is not None:
        document = _read_report(source)
        verified = identity is not None
        if identity is not None:
            report_document.verify_offline(document, identity.read_text(errors="replace"))
    else:
        with daemon.connect() as conn:
            document = conn.call(system.GET_POSTURE_REPORT).document.encode()
    doc = _decoded(document)
    if output is not None:
        output.write_bytes(document)
        click.echo(f"signed report written to {output}", err=True)
    if pdf is not None:
        _write_pdf(doc, document, pdf, verified=verified)
    if as_json:
        click.echo(document.decode())
    elif output is None or pdf is None:
        click.echo(render_report(doc.report))


@posture.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--identity",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check offline against this identity key or certificate (PEM), as recorded from "
    "`mfpsec keys identity`; without it the daemon checks against every identity key the "
    "device has had.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def verify(daemon: Daemon, path: Path, identity: Path | None, as_json: bool) -> None:
    """Check a signed posture report: made by this device, and unaltered."""
    document = _read_report(path)
    if identity is None:
        _decoded(document)  # refused here, before the daemon is asked, when no report
        text = document.decode()
        with daemon.connect() as conn:
            verdict = conn.call(system.VERIFY_POSTURE_REPORT, system.VerifyReportParams(text))
    else:
        verdict = report_document.verify_offline(document, identity.read_text(errors="replace"))
    if as_json:
        echo_json(verdict)
        return
    if identity is not None:
        which = f"the identity key in {identity}"
    elif verdict.current:
        which = "the identity key it holds now"
    else:
        which = "an earlier identity key"
    click.echo(
        f"valid: signed by this device ({which}, {verdict.identity}) at {verdict.at}; "
        f"security level {verdict.level_text}"
    )


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
