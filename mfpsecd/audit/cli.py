"""`mfpsec audit …`: read, export and verify the audit log."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mfpsecd.audit import api as audit_api
from mfpsecd.audit import frames
from mfpsecd.audit import log_format as auditlog
from mfpsecd.base.errors import EX_DATAERR, EX_IOERR
from mfpsecd.base.escape import shown
from mfpsecd.cli.common import Daemon, echo_json, reports_errors


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: show, export, verify."""


def _render(e: audit_api.AuditEntry) -> str:
    who = shown(e.subject.user or e.subject.origin)
    if e.subject.uid >= 0:
        who += f" uid={e.subject.uid} pid={e.subject.pid}"
    outcome = click.style(e.outcome, fg="green" if e.outcome == "success" else "red")
    details = " ".join(f"{shown(k)}={shown(str(v))}" for k, v in sorted(e.details.items()))
    return f"{e.seq:>7} {e.time}  {e.type:<20} {outcome:<7}  {who:<22} {shown(e.object)}  {details}"


@audit_group.command("show")
@click.option("--since", default="", help="RFC 3339 UTC time, inclusive.")
@click.option("--until", default="", help="RFC 3339 UTC time, exclusive.")
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(audit_api.EVENT_TYPES),
    help="Only these event types (repeatable).",
)
@click.option("--user", default="")
@click.option("--outcome", type=click.Choice(audit_api.OUTCOMES))
@click.option("--limit", default=200, show_default=True, help="The newest N (0: all).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def show(
    daemon: Daemon,
    *,
    since: str,
    until: str,
    types: tuple[str, ...],
    user: str,
    outcome: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Audit records, oldest first."""
    params = audit_api.AuditQueryParams(since, until, list(types), user, outcome or "", limit)
    with daemon.connect() as conn:
        entries = conn.call(audit_api.QUERY_AUDIT, params).entries
    if as_json:
        echo_json(entries)
    else:
        for e in entries:
            click.echo(_render(e))


@audit_group.command("export")
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(path_type=Path, allow_dash=True),
    help="File to write ('-' for stdout): one canonical record per line.",
)
@click.pass_obj
@reports_errors
def export(daemon: Daemon, dest: Path) -> None:
    """Every record, verifiable offline with `mfpsec audit verify FILE`."""
    with daemon.connect() as conn:
        lines = [x for r in conn.call_more(audit_api.EXPORT_AUDIT) for x in r.lines]
    text = "".join(line + "\n" for line in lines)
    if str(dest) == "-":
        sys.stdout.write(text)
    else:
        dest.write_text(text)
        click.echo(f"{len(lines)} records written to {dest}", err=True)


@audit_group.command("verify")
@click.argument("file", required=False, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="FINGERPRINT",
    help="FILE only: the device's identity key fingerprint(s), now and earlier "
    "(`mfpsec keys identity`, `keys identity-history`); the checkpoint "
    "must be signed by one of them.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def verify(daemon: Daemon, file: Path | None, identities: tuple[str, ...], as_json: bool) -> None:
    """Check the hash chain: the device's log, or FILE (an export, a copied segment file
    or the copied log directory) without the daemon. The newest checkpoint must be
    signed, on the device by its identity key (now or earlier), for FILE by a key named
    with --identity (else its fingerprint is printed to compare). Exit 0 if intact, 65 if
    tampered, 74 if unreadable."""
    if file is None:
        with daemon.connect() as conn:
            v = conn.call(audit_api.VERIFY_AUDIT)
        ok, records, last, problem, at, detail = (
            v.ok,
            v.records,
            v.last_seq,
            v.problem,
            v.at_seq,
            v.detail,
        )
    else:
        payloads, cp, unreadable = frames.records_of_file(_read_log(file))
        # A log whose oldest records were dropped (capacity policy, retention) starts later:
        # the chain is checked from its first record on.
        first = auditlog.head(payloads[0]) if payloads else None
        first_seq, first_prev = (
            (first[0], bytes.fromhex(first[1])) if first else (1, auditlog.GENESIS)
        )
        if first_seq != 1 and not as_json:
            click.echo(
                f"note: the log starts at record {first_seq} (older records were "
                "dropped by the capacity or retention policy)"
            )
        verdict = auditlog.verify(
            payloads,
            first_seq=first_seq,
            first_prev=first_prev,
            checkpoint=cp.position if cp else None,
        )
        ok, records, last, problem, at, detail = (
            verdict.ok,
            verdict.records,
            verdict.last_seq,
            verdict.problem,
            verdict.at_seq,
            verdict.detail,
        )
        if ok and unreadable:
            ok, problem, at, detail = False, "truncated", last + 1, unreadable
        trusted = frozenset(i.lower() for i in identities) if identities else None
        if ok and cp is not None:
            why, what = auditlog.checkpoint_problem(cp, trusted)
            if why:
                ok, problem, at, detail = False, why, cp.seq, what
        if cp is not None and not as_json:
            signer = (
                f"signed by key {auditlog.signer_fingerprint(cp)}"
                if cp.signature
                else "UNSIGNED (it vouches for nothing)"
            )
            whose = (
                ""
                if not cp.signature
                else " (compare it with `mfpsec keys identity`)"
                if trusted is None
                else ", this device's identity"
                if problem != "checkpoint foreign"
                else ", NOT this device's identity"
            )
            # The file may be an attacker's: its strings are shown escaped.
            click.echo(f"checkpoint: record {cp.seq} at {shown(cp.time)}, {signer}{whose}")
        elif not as_json:
            click.echo(
                "no checkpoint: a log cut short at a record boundary cannot be told "
                "from a shorter one"
            )
    if as_json:
        echo_json(
            {
                "ok": ok,
                "records": records,
                "last_seq": last,
                "problem": problem,
                "at_seq": at,
                "detail": detail,
            }
        )
    elif ok:
        click.echo(f"intact: {records} records, the chain links from 1 to {last}")
    else:
        click.echo(
            f"TAMPERED: {problem} at record {at}: {shown(detail)} "
            f"({records} records verified before it)"
        )
    if not ok:
        sys.exit(EX_IOERR if problem == "unreadable" else EX_DATAERR)


def _read_log(path: Path) -> bytes:
    """A file, or a log directory's segments in order."""
    if path.is_dir():
        return b"".join(p.read_bytes() for p in sorted(path.glob("audit-*.log")))
    return path.read_bytes()


@audit_group.group("forward")
def forward_group() -> None:
    """SIEM forwarding (CEF/LEEF over RFC 5425 syslog)."""


@forward_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def forward_status(daemon: Daemon, as_json: bool) -> None:
    """Each destination: connected or not, how far it has got, what is left."""
    with daemon.connect() as conn:
        dests = conn.call(audit_api.GET_FORWARD_STATUS).destinations
    if as_json:
        echo_json(dests)
        return
    if not dests:
        click.echo("no SIEM destination configured ([[audit.forward]] in the configuration)")
    for d in dests:
        state = click.style(
            "connected" if d.connected else "DISCONNECTED", fg="green" if d.connected else "red"
        )
        click.echo(
            f"{d.name}: {d.transport} {d.address} {d.format}  {state}  "
            f"forwarded through record {d.cursor}, backlog {d.backlog}"
            + (f"  last error: {d.last_error}" if d.last_error else "")
        )
