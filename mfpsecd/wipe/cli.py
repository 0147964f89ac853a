"""`mfpsec wipe …`: sanitize the board's disks (SPEC W-2..W-5) and handle the signed
certificates that prove it."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import click
import msgspec

from mfpsecd.base.errors import ErrorCode
from mfpsecd.base.escape import shown
from mfpsecd.cli.common import (
    PASSWORD_FILE,
    Daemon,
    echo_json,
    password_again,
    reports_errors,
    size_text,
)
from mfpsecd.client import follow as follow_stream
from mfpsecd.wipe import api as wipe

MODES_HELP = """Modes (SPEC W-2; flash media always get one 0x00 pass, W-3):

\b
  1  JEITA: 0x00
  2  NSA: random, random, 0x00
  3  DoD 5220.22-M: 0x00, 0xFF, random, verify
  4  US Army AR380-19: random, 0x00, 0xFF
  5  former NSA: 0x00, 0xFF, 0x00, 0xFF
  6  NATO: 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, random
  7  German VSITR: 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0xAA
  8  AFSSI-5020: 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0xAA, verify

Every sanitization of an HDD ends with a read-back of every byte."""

_STATE_COLOUR = {
    wipe.JobState.RUNNING: "yellow",
    wipe.JobState.COMPLETED: "green",
    wipe.JobState.FAILED: "red",
    wipe.JobState.CANCELLED: "red",
}


def _render_targets(targets: list[wipe.Target]) -> str:
    if not targets:
        return "the board profile lists no disk"
    header = ("ID", "DEVICE", "MEDIUM", "TRANSPORT", "SIZE", "MODEL", "SERIAL", "STATE")
    rows = [header]
    for t in targets:
        state = (
            "not sanitizable"
            if not t.sanitizable
            else f"in use: {shown(t.in_use)}"
            if t.in_use
            else "ready"
        )
        # Model and serial are what the device says of itself: untrusted.
        rows.append(
            (
                t.id,
                shown(t.device),
                t.medium,
                t.transport,
                size_text(t.size_bytes),
                shown(t.model) or "-",
                shown(t.serial) or "-",
                state,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    )


def _fraction(j: wipe.Job) -> float:
    if not j.steps or not j.size_bytes:
        return 1.0
    done = j.step * j.size_bytes + (j.position if j.step < len(j.steps) else 0)
    return min(done / (len(j.steps) * j.size_bytes), 1.0)


def _render_job(j: wipe.Job) -> str:
    state = click.style(j.state.value, fg=_STATE_COLOUR[j.state], bold=True)
    step = (
        f"step {j.step + 1}/{len(j.steps)} ({j.steps[j.step]}), "
        f"{size_text(j.position)} of {size_text(j.size_bytes)}"
        if j.state is wipe.JobState.RUNNING and j.step < len(j.steps)
        else ""
    )
    lines = [
        f"{j.id}: {state}" + (f", {step}" if step else "") + f" - {_fraction(j):.1%}",
        f"  target {j.target}, "
        + (f"{j.level} by {j.method}" if j.level else f"mode {j.mode}")
        + f": {', '.join(j.steps)}",
        f"  started {j.started}"
        + (f", ended {j.ended}" if j.ended else "")
        + (f", resumed {j.resumed} time(s)" if j.resumed else ""),
    ]
    if j.error:
        lines.append(f"  error: {shown(j.error)}")
    if j.certificate_sha256:
        lines.append(f"  certificate SHA-256 {j.certificate_sha256} (mfpsec wipe cert {j.id})")
    return "\n".join(lines)


def _exit_for(j: wipe.Job) -> None:
    """A sanitization that did not complete is a failure of the command."""
    if j.state is wipe.JobState.COMPLETED:
        return
    code = ErrorCode.from_wire(j.error_code) if j.error_code else None
    if code is None:
        code = (
            ErrorCode.WIPE_CANCELLED
            if j.state is wipe.JobState.CANCELLED
            else ErrorCode.WIPE_IO_ERROR
        )
    sys.exit(code.exit_status)


def _follow(daemon: Daemon, job: wipe.Job, as_json: bool) -> wipe.Job:
    """Watch until the job ends: a progress bar on a terminal, JSON lines with --json.
    The job goes on in the daemon through a restart (it resumes after a power cut): so
    does the watch. A pass over a large disk reports every poll, but be patient."""
    last = job
    replies = follow_stream(
        daemon.reconnector(),
        wipe.WATCH,
        wipe.JobParams(job.id),
        silence_s=None,
        until=lambda j: j.state is not wipe.JobState.RUNNING,
    )
    if as_json:
        for j in replies:
            click.echo(msgspec.json.encode(j).decode())  # JSON Lines: one reply per line
            last = j
        return last
    scale = 10_000
    label = f"{job.target} {job.method}" if job.level else f"{job.target} mode {job.mode}"
    with click.progressbar(
        length=scale, label=label, file=sys.stderr, show_eta=True, item_show_func=lambda s: s
    ) as bar:
        shown = 0
        for j in replies:
            last = j
            at = int(_fraction(j) * scale)
            if j.state is wipe.JobState.RUNNING and j.step < len(j.steps):
                bar.current_item = f"{j.steps[j.step]} {j.step + 1}/{len(j.steps)}"
            if at > shown:
                bar.update(at - shown)
                shown = at
    return last


@click.group("wipe", epilog=MODES_HELP)
def wipe_group() -> None:
    """Sanitize the board's disks and prove it with signed certificates."""


@wipe_group.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def targets(daemon: Daemon, as_json: bool) -> None:
    """The disks of the board profile, and whether each can be sanitized now."""
    with daemon.connect() as conn:
        t = conn.call(wipe.LIST_TARGETS).targets
    echo_json(t) if as_json else click.echo(_render_targets(t))


@wipe_group.command("start", epilog=MODES_HELP)
@click.option("--target", "disk", required=True, help="A disk id from `mfpsec wipe targets`.")
@click.option("--mode", type=click.IntRange(1, 8), required=True, help="Overwrite mode 1-8.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-wait", is_flag=True, help="Return once started; follow with `status -f`.")
@click.option("--json", "as_json", is_flag=True, help="Progress as JSON lines.")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def start(
    daemon: Daemon,
    *,
    disk: str,
    mode: int,
    yes: bool,
    no_wait: bool,
    as_json: bool,
    password_file: Path | None,
) -> None:
    """Destroy every byte on a disk with an overwrite mode, then read it back.

    A logged-in user gives their password again. The sanitization goes on in the
    daemon if this command is interrupted, and after a power cut it resumes where it
    was; the certificate is issued only when every pass is written and read back.
    """
    with daemon.connect() as conn:
        if not yes:
            match = [t for t in conn.call(wipe.LIST_TARGETS).targets if t.id == disk]
            what = (
                f"{disk} ({match[0].model or match[0].device}, {size_text(match[0].size_bytes)})"
                if match
                else disk
            )
            click.confirm(f"Destroy all data on {what}?", abort=True, err=True)
        job = conn.call(
            wipe.START,
            wipe.StartParams(disk, mode, password=password_again(daemon, password_file)),
        )
    _see_through(daemon, job, no_wait=no_wait, as_json=as_json)


def _see_through(daemon: Daemon, job: wipe.Job, *, no_wait: bool, as_json: bool) -> None:
    """Show the started job, or follow it to its end and exit with its result."""
    if no_wait:
        echo_json(job) if as_json else click.echo(_render_job(job))
        return
    job = _follow(daemon, job, as_json)
    if not as_json:
        click.echo(_render_job(job))
    _exit_for(job)


def _render_plan(p: wipe.PurgePlan) -> str:
    reach = p.achieves.value + (f" - {p.shortfall}" if p.shortfall else "")
    lines = [
        f"{p.target} ({p.transport}): {p.level.value} by {p.method}, reaches {reach}",
        f"  read-back expects: {p.expect}",
    ]
    if p.estimate_s:
        lines.append(f"  the device estimates {p.estimate_s:.0f} s")
    if p.whole_device:
        lines.append("  erases the WHOLE device (every namespace), not only this target")
    if p.needs_confirmation:
        lines.append("  needs a service engineer's confirmation (--confirm)")
    lines += [f"  not possible: {s.method}: {shown(s.reason)}" for s in p.skipped]
    lines += [f"  device: {shown(fact)}" for fact in p.facts]
    lines += [f"  evidence: {shown(e)}" for e in p.evidence]
    lines += [f"  not read: {shown(problem)}" for problem in p.problems]
    return "\n".join(lines)


_LEVEL = click.Choice([level.value for level in wipe.Level])


@wipe_group.command("plan")
@click.argument("disk")
@click.option(
    "--level", type=_LEVEL, default="purge", show_default=True, help="NIST SP 800-88 level."
)
@click.option(
    "--method", default="", metavar="METHOD", help="Explain this method instead of choosing one."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def plan(daemon: Daemon, disk: str, level: str, method: str, as_json: bool) -> None:
    """What a purge of DISK would do: the device's own capabilities, the method, and why
    each stronger method is not possible. Nothing is written."""
    with daemon.connect() as conn:
        p = conn.call(wipe.PLAN_PURGE, wipe.PlanParams(disk, wipe.Level(level), method))
    echo_json(p) if as_json else click.echo(_render_plan(p))


@wipe_group.command("purge")
@click.option("--target", "disk", required=True, help="A disk id from `mfpsec wipe targets`.")
@click.option(
    "--level", type=_LEVEL, default="purge", show_default=True, help="NIST SP 800-88 level."
)
@click.option(
    "--mode",
    type=click.IntRange(1, 8),
    default=1,
    show_default=True,
    help="Overwrite mode where the device has no purge command (an HDD).",
)
@click.option(
    "--confirm",
    is_flag=True,
    help="Service engineer: confirm a purge that erases the whole device or "
    "falls short of the level.",
)
@click.option(
    "--method",
    default="",
    metavar="METHOD",
    help="Service engineer: run this method instead of the planner's choice "
    "(needs --confirm), e.g. nvme-format-erase, ata-security-erase.",
)
@click.option("--verify-all", is_flag=True, help="Read back every block, not a sample.")
@click.option("--yes", is_flag=True, help="Do not ask before destroying the data.")
@click.option("--no-wait", is_flag=True, help="Return once started; follow with `status -f`.")
@click.option("--json", "as_json", is_flag=True, help="Progress as JSON lines.")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def purge(
    daemon: Daemon,
    *,
    disk: str,
    level: str,
    mode: int,
    confirm: bool,
    method: str,
    verify_all: bool,
    yes: bool,
    no_wait: bool,
    as_json: bool,
    password_file: Path | None,
) -> None:
    """Purge a disk with the strongest method it supports (NVMe Sanitize or Format, ATA
    Security Erase, eMMC secure erase, else an overwrite), then read it back.

    A device that reports success and leaves data fails the purge; its certificate
    says so. See the plan first with `mfpsec wipe plan DISK`.
    """
    with daemon.connect() as conn:
        if not yes:
            p = conn.call(wipe.PLAN_PURGE, wipe.PlanParams(disk, wipe.Level(level), method))
            click.echo(_render_plan(p), err=True)
            click.confirm(f"Destroy all data on {disk} with {p.method}?", abort=True, err=True)
        job = conn.call(
            wipe.PURGE,
            wipe.PurgeParams(
                disk,
                wipe.Level(level),
                mode=mode,
                confirm=confirm,
                method=method,
                verify_all=verify_all,
                password=password_again(daemon, password_file),
            ),
        )
    _see_through(daemon, job, no_wait=no_wait, as_json=as_json)


@wipe_group.command("status")
@click.argument("job_id", required=False)
@click.option("--follow", "-f", is_flag=True, help="Follow the job until it ends.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def status(daemon: Daemon, job_id: str | None, follow: bool, as_json: bool) -> None:
    """Every sanitization (or one, by id) and its progress."""
    with daemon.connect() as conn:
        if job_id is None:
            if follow:
                raise click.UsageError("--follow needs a job id")
            jobs = conn.call(wipe.LIST_JOBS).jobs
            if as_json:
                echo_json(jobs)
            else:
                click.echo("\n".join(_render_job(j) for j in jobs) or "no sanitization yet")
            return
        job = conn.call(wipe.GET_JOB, wipe.JobParams(job_id))
    if follow:
        job = _follow(daemon, job, as_json)
        if not as_json:
            click.echo(_render_job(job))
        _exit_for(job)
        return
    echo_json(job) if as_json else click.echo(_render_job(job))
    if job.state is not wipe.JobState.RUNNING:
        _exit_for(job)  # a failed or cancelled job is the command's failure too


@wipe_group.command("cancel")
@click.argument("job_id")
@click.pass_obj
@reports_errors
def cancel(daemon: Daemon, job_id: str) -> None:
    """Stop a running sanitization (the disk is then NOT sanitized)."""
    with daemon.connect() as conn:
        job = conn.call(wipe.CANCEL, wipe.JobParams(job_id))
    click.echo(_render_job(job))


@wipe_group.command("cert")
@click.argument("job_id")
@click.option(
    "--pdf",
    "pdf",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the printable PDF to this file.",
)
@click.option("--text", is_flag=True, help="Print the plain-text rendering instead of JSON.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the signed JSON document to this file instead of stdout.",
)
@click.option(
    "--openssl",
    "openssl_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write JOB.body.json (the signed bytes) and JOB.sig (DER) there, to "
    "check with openssl against the identity history (see README).",
)
@click.pass_obj
@reports_errors
def cert(
    daemon: Daemon,
    job_id: str,
    *,
    pdf: Path | None,
    text: bool,
    out: Path | None,
    openssl_dir: Path | None,
) -> None:
    """The signed certificate of a sanitization: completed, or FAILED / CANCELLED with why
    (then the exit status is that job's error, as for `status`)."""
    with daemon.connect() as conn:

        def certificate(fmt: wipe.CertificateFormat) -> wipe.Certificate:
            return conn.call(wipe.GET_CERTIFICATE, wipe.CertificateParams(job_id, fmt))

        doc = certificate(wipe.CertificateFormat.JSON)
        rendering = certificate(wipe.CertificateFormat.TEXT) if text else None
        printable = certificate(wipe.CertificateFormat.PDF) if pdf else None
        body = certificate(wipe.CertificateFormat.SIGNED_BODY) if openssl_dir else None
        job = conn.call(wipe.GET_JOB, wipe.JobParams(job_id))
    if body is not None and openssl_dir is not None:
        signature = msgspec.json.decode(doc.content)["signature"]["value"]
        openssl_dir.mkdir(parents=True, exist_ok=True)
        (openssl_dir / f"{job_id}.body.json").write_bytes(body.content.encode())
        (openssl_dir / f"{job_id}.sig").write_bytes(bytes.fromhex(signature))
        click.echo(f"signed body and signature written to {openssl_dir}", err=True)
    if out is not None:
        out.write_text(doc.content)
        click.echo(f"certificate written to {out} (body SHA-256 {doc.sha256})", err=True)
    if printable is not None and pdf is not None:
        pdf.write_bytes(base64.b64decode(printable.content))
        click.echo(f"printable PDF written to {pdf}", err=True)
    if rendering is not None:
        # The rendering holds the drive's own model and serial: each line escaped.
        click.echo("\n".join(shown(line) for line in rendering.content.split("\n")))
    elif out is None:
        click.echo(doc.content)
    _exit_for(job)  # the certificate of a failed or cancelled job: that job's status


@wipe_group.command("verify-cert")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def verify_cert(daemon: Daemon, path: Path, as_json: bool) -> None:
    """Check a certificate's signature, and whether this device issued it."""
    data = sys.stdin.read() if str(path) == "-" else path.read_text()
    with daemon.connect() as conn:
        v = conn.call(wipe.VERIFY_CERTIFICATE, wipe.VerifyCertificateParams(data))
    if as_json:
        echo_json(v)
        return
    fp = v.identity_fingerprint[:16]
    issuer = (
        f"this device, under an earlier identity {fp} (replaced {v.identity_replaced_at})"
        if v.identity_replaced_at
        else f"this device (identity {fp})"
    )
    # The body's strings come from the document handed in: shown escaped.
    click.echo(
        f"valid signature by {issuer}\n  certificate {shown(v.id)} for "
        f"{shown(v.target)} on {shown(v.device)}: {shown(v.result)}\n"
        f"  body SHA-256 {v.sha256}"
    )
