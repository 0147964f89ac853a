"""`mfpsec fw …`: firmware status, verification, update, the rewrite lock, and the
vendor's signing tool (which needs no daemon)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mfpsecd.cli.common import (
    PASSWORD_FILE,
    Daemon,
    echo_json,
    password_again,
    reports_errors,
    size_text,
)
from mfpsecd.firmware import api as firmware


def render_status(s: firmware.FirmwareStatus) -> str:
    b = s.boot
    if b.result == "verified":
        boot = click.style("verified", fg="green", bold=True) + (
            f" slot {b.slot} ({b.mode} mode), PCR {b.pcr} "
            + (f"{b.pcr_value[:16]}…" if b.pcr_value else "not measured (no TPM)")
        )
    elif b.result:
        boot = click.style("FAILED", fg="red", bold=True) + f" ({b.mode} mode): {b.reason}"
    else:
        boot = click.style("not run", fg="yellow", bold=True) + " at this power-on"
    lock = (
        click.style("prohibited", fg="yellow", bold=True)
        + f" by {s.prohibited_by} since {s.prohibited_at}"
        if s.rewrite_prohibited
        else "allowed"
    )
    lines = [
        f"model: {s.model}",
        f"boot verification: {boot}",
        f"anti-rollback floor: epoch {s.counter if s.counter >= 0 else 'unreadable'}",
        f"firmware rewriting: {lock}",
    ]
    for slot in s.slots:
        mark = "*" if slot.name == s.active else " "
        extra = f", {s.tries} boot attempt(s) left" if slot.name == s.pending else ""
        desc = (
            f"version {slot.version}, epoch {slot.epoch}, manifest {slot.manifest_sha256[:16]}"
            if slot.version
            else ""
        )
        lines.append(f"{mark} slot {slot.name}: {slot.state}{extra}  {desc}".rstrip())
    if s.last_failed:
        lines.append(f"last failure: slot {s.last_failed}: {s.last_failed_reason}")
    return "\n".join(lines)


def _render_verification(v: firmware.Verification) -> str:
    return (
        f"verified: {v.product} {v.version}, epoch {v.epoch}, models "
        f"{', '.join(v.models)}\n  {v.files} files, {size_text(v.bytes)}; manifest "
        f"{v.manifest_sha256}\n  signed by {v.signer}"
    )


@click.group("fw")
def fw_group() -> None:
    """Firmware: status, verify, update, lock/unlock; sign (vendor side)."""


@fw_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def status(daemon: Daemon, as_json: bool) -> None:
    """The slots, the boot verification, the anti-rollback floor and the rewrite lock."""
    with daemon.connect() as conn:
        s = conn.call(firmware.GET_STATUS)
    echo_json(s) if as_json else click.echo(render_status(s))


@fw_group.command("verify")
@click.argument(
    "bundle", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--slot", type=click.Choice(["a", "b"]), help="An installed slot (default: the one running)."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def verify(daemon: Daemon, bundle: Path | None, slot: str | None, as_json: bool) -> None:
    """Verify an installed slot, or a bundle archive BUNDLE without installing it."""
    with daemon.connect() as conn:
        conn.set_timeout(max(daemon.timeout, 600.0))  # hashing a large image takes time
        if bundle is None:
            v = conn.call(firmware.VERIFY, firmware.VerifyParams(slot=slot or ""))
        else:
            with bundle.open("rb") as f:
                token = conn.pass_descriptor(f.fileno())
                v = conn.call(firmware.VERIFY, firmware.VerifyParams(descriptor=token))
    echo_json(v) if as_json else click.echo(_render_verification(v))


@fw_group.command("update")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@PASSWORD_FILE
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def update(daemon: Daemon, bundle: Path, password_file: Path | None, as_json: bool) -> None:
    """Write the bundle archive BUNDLE to the inactive slot; it boots next time."""
    password = password_again(daemon, password_file)
    with daemon.connect() as conn, bundle.open("rb") as f:
        conn.set_timeout(max(daemon.timeout, 1800.0))
        token = conn.pass_descriptor(f.fileno())
        staged = conn.call(firmware.UPDATE, firmware.UpdateParams(token, password))
    if as_json:
        echo_json(staged)
        return
    click.echo(
        f"written to slot {staged.slot}: version {staged.version}, epoch "
        f"{staged.epoch}, manifest {staged.manifest_sha256[:16]}\nreboot to switch: "
        f"the next boot tries it ({staged.tries} attempts) and keeps it once verified"
    )


def _set_lock(daemon: Daemon, password_file: Path | None, locked: bool) -> None:
    password = password_again(daemon, password_file)
    with daemon.connect() as conn:
        s = conn.call(firmware.LOCK if locked else firmware.UNLOCK, firmware.LockParams(password))
    done = "prohibited" if locked else "allowed again"
    click.echo(f"firmware rewriting {done} by {s.by} at {s.at}")


@fw_group.command("lock")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def lock(daemon: Daemon, password_file: Path | None) -> None:
    """Prohibit firmware rewriting (administrator)."""
    _set_lock(daemon, password_file, True)


@fw_group.command("unlock")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def unlock(daemon: Daemon, password_file: Path | None) -> None:
    """Allow firmware rewriting again (an administrator's session only)."""
    _set_lock(daemon, password_file, False)


@fw_group.command(
    "sign", context_settings={"ignore_unknown_options": True, "help_option_names": []}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sign(args: tuple[str, ...]) -> None:
    """Vendor side, no daemon needed: `mfpsecd fw-sign` (same options; --help there)."""
    # The signing tool lives with the daemon's code (it builds manifests with the same
    # hashing engine the device verifies with); the CLI stays a thin client.
    argv = [sys.executable, "-m", "mfpsecd.daemon.main", "fw-sign", *args]
    os.execv(sys.executable, argv)  # noqa: S606 (our own interpreter, no shell)
