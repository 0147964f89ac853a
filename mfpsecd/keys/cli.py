"""`mfpsec keys …` and `mfpsec secrets …`: the key chain, backups and the secret store."""

from __future__ import annotations

from pathlib import Path

import click

from mfpsecd.base.escape import shown
from mfpsecd.cli.common import Daemon, echo_json, read_secret, reports_errors
from mfpsecd.client import NoParams, follow
from mfpsecd.keys import api as keys

_STATE_COLOUR = {"ready": "green", "locked": "red", "destroyed": "red", "starting": "yellow"}


def render_status(s: keys.KeyStatus) -> str:
    state = click.style(s.state, fg=_STATE_COLOUR.get(s.state, "yellow"), bold=True)
    root = (
        "software keys (no TPM: protected only by file permissions)"
        if s.software_keys
        else f"TPM {s.tpm.backend}, {s.tpm.manufacturer} firmware {s.tpm.firmware}"
    )
    lines = [
        f"key chain: {state}" + (f" - {s.reason}" if s.reason else ""),
        f"root of trust: {root}",
        f"wrapping key: RSA-2048, SHA-256 {s.wrapping_key_fingerprint or '-'}",
        "opens only while: "
        + (s.bound_to or ("(no TPM)" if s.software_keys else "any PCR values (bound to none)")),
        f"device identity: ECDSA P-256, SHA-256 {s.identity_fingerprint or '-'}",
        f"master key: AES-256, generation {s.master_key_generation}"
        + (" (rotation pending)" if s.rotation_pending else "")
        + (f", rotated {s.rotated_at}" if s.rotated_at else ""),
        f"created: {s.created_at or '-'}",
        f"backups: {s.backups}"
        + (
            f", last {s.last_backup_at}"
            if s.last_backup_at
            else " - none yet: make one (mfpsec keys backup)"
        ),
        f"secrets: {s.secrets}",
    ]
    return "\n".join(lines)


@click.group("keys")
def keys_group() -> None:
    """The key chain: status, backup and restore, master key rotation, device identity."""


@keys_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def status(daemon: Daemon, as_json: bool) -> None:
    """State of the key chain and the TPM behind it."""
    with daemon.connect() as conn:
        s = conn.call(keys.GET_KEY_STATUS)
    echo_json(s) if as_json else click.echo(render_status(s))


@keys_group.command("backup")
@click.option(
    "--to",
    "to",
    required=True,
    help="A directory (e.g. a mounted USB stick) or a target id from `keys targets`.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, allow_dash=True),
    help="Read the passphrase from a file ('-' for stdin) instead of a prompt.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def backup(daemon: Daemon, to: str, passphrase_file: Path | None, as_json: bool) -> None:
    """Write the wrapping key, encrypted under a passphrase, for a TPM replacement."""
    destination = to if not Path(to).exists() else str(Path(to).resolve())
    passphrase = read_secret(passphrase_file, "Backup passphrase", confirm=True)
    with daemon.connect() as conn:
        conn.set_timeout(max(daemon.timeout, 120.0))  # Argon2id is slow on purpose
        r = conn.call(keys.BACKUP_KEYS, keys.BackupParams(destination, passphrase))
    echo_json(r) if as_json else click.echo(
        f"backup written: {r.path} ({r.size} bytes, key {r.fingerprint[:16]})\n"
        "Keep it and its passphrase apart; either alone is useless."
    )


def render_schedule(s: keys.BackupSchedule) -> str:
    if not s.enabled:
        return "backup schedule: none (backups only by hand: `mfpsec keys backup`)"
    last = (
        f"last run {s.last_at}: {s.last_result}"
        + (f" ({shown(s.last_error)})" if s.last_error else "")
        + (f", {shown(s.last_path)}" if s.last_result == "ok" and s.last_path else "")
    )
    return (
        f"backup schedule: every {s.every_days} day(s) to {shown(s.target)}, keeping "
        f"{s.keep}\n{last}\nnext run {s.next_at}"
    )


@keys_group.command("backup-schedule")
@click.option("--every", "every_days", type=click.IntRange(1, 365), help="Days between backups.")
@click.option(
    "--to",
    "to",
    help="A directory (e.g. where a USB stick is mounted) or a target id from `keys targets`.",
)
@click.option(
    "--keep",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="This device's newest backups kept there; older ones are deleted.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, allow_dash=True),
    help="Read the passphrase from a file ('-' for stdin) instead of a prompt.",
)
@click.option("--off", is_flag=True, help="No more scheduled backups.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def backup_schedule(
    daemon: Daemon,
    *,
    every_days: int | None,
    to: str | None,
    keep: int,
    passphrase_file: Path | None,
    off: bool,
    as_json: bool,
) -> None:
    """Show the scheduled key backup, set it (--every and --to; the first backup runs
    now) or stop it (--off). The passphrase is kept sealed in the secret store."""
    with daemon.connect() as conn:
        if off:
            s = conn.call(keys.CLEAR_BACKUP_SCHEDULE)
        elif every_days is None and to is None:
            s = conn.call(keys.GET_BACKUP_SCHEDULE)
        elif every_days is None or to is None:
            raise click.UsageError("a schedule needs both --every and --to")
        else:
            destination = to if not Path(to).exists() else str(Path(to).resolve())
            passphrase = read_secret(passphrase_file, "Backup passphrase", confirm=True)
            conn.set_timeout(max(daemon.timeout, 120.0))  # Argon2id is slow on purpose
            s = conn.call(
                keys.SET_BACKUP_SCHEDULE,
                keys.SetBackupScheduleParams(destination, every_days, passphrase, keep),
            )
    echo_json(s) if as_json else click.echo(render_schedule(s))


@keys_group.command("restore")
@click.option(
    "--from", "source", required=True, type=click.Path(path_type=Path), help="The backup file."
)
@click.option("--passphrase-file", type=click.Path(path_type=Path, allow_dash=True))
@click.pass_obj
@reports_errors
def restore(daemon: Daemon, source: Path, passphrase_file: Path | None) -> None:
    """Re-import the wrapping key into a replacement TPM (only when the chain is locked)."""
    passphrase = read_secret(passphrase_file, "Backup passphrase", confirm=False)
    with daemon.connect() as conn:
        conn.set_timeout(max(daemon.timeout, 120.0))
        r = conn.call(keys.RESTORE_KEYS, keys.RestoreParams(str(source.resolve()), passphrase))
    click.echo(f"restored: key {r.fingerprint[:16]}; the key chain is ready")


@keys_group.command("rotate")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def rotate(daemon: Daemon, as_json: bool) -> None:
    """Replace the master key and re-seal every secret under the new one."""
    with daemon.connect() as conn:
        conn.set_timeout(max(daemon.timeout, 300.0))
        r = conn.call(keys.ROTATE_MASTER_KEY)
    echo_json(r) if as_json else click.echo(
        f"master key generation {r.generation}; {r.secrets} secrets re-sealed"
    )


@keys_group.command("destroy")
@click.option(
    "--confirm",
    "confirm",
    required=True,
    metavar="FINGERPRINT",
    help="The wrapping key fingerprint shown by `mfpsec keys status`.",
)
@click.pass_obj
@reports_errors
def destroy(daemon: Daemon, confirm: str) -> None:
    """Decommission: destroy every key and sealed secret on this device. Irreversible."""
    with daemon.connect() as conn:
        conn.call(keys.DESTROY_KEYS, keys.DestroyParams(confirm))
    click.echo("keys destroyed; a new key chain is created when the daemon next starts")


@keys_group.command("identity")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csr", "what", flag_value="csr", help="Print only the certificate request.")
@click.option("--cert", "what", flag_value="cert", help="Print only the certificate.")
@click.pass_obj
@reports_errors
def identity(daemon: Daemon, as_json: bool, what: str | None) -> None:
    """The device identity: public key, self-signed certificate, certificate request."""
    with daemon.connect() as conn:
        d = conn.call(keys.GET_DEVICE_IDENTITY)
    if as_json:
        echo_json(d)
    elif what == "csr":
        click.echo(d.csr_pem, nl=False)
    elif what == "cert":
        click.echo(d.certificate_pem, nl=False)
    else:
        click.echo(f"fingerprint (SHA-256 of the public key): {d.fingerprint}\n")
        click.echo(d.public_key_pem + d.certificate_pem, nl=False)


@keys_group.command("identity-history")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the keys and the signed links there, for openssl (see README).",
)
@click.pass_obj
@reports_errors
def identity_history(daemon: Daemon, as_json: bool, out: Path | None) -> None:
    """Every identity key this device has had (a restore onto a new TPM makes a new one),
    each earlier one proven by a link its successor signed."""
    with daemon.connect() as conn:
        h = conn.call(keys.GET_IDENTITY_HISTORY)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for n, entry in enumerate(h.identities):
            (out / f"identity-{n}.pem").write_text(entry.public_key)
        for link in h.links:
            (out / f"link-{link.seq}.json").write_bytes(link.document.encode())
            (out / f"link-{link.seq}.sig").write_bytes(bytes.fromhex(link.signature))
        click.echo(
            f"{len(h.identities)} identity key(s) and {len(h.links)} link(s) written "
            f"to {out} (identity-0.pem is the current key)",
            err=True,
        )
    if as_json:
        echo_json(h)
        return
    if out is None:
        for n, entry in enumerate(h.identities):
            when = (
                f"replaced {entry.replaced_at}, proven by link {entry.link}"
                if entry.replaced_at
                else "current (in the TPM)"
            )
            click.echo(f"identity-{n}  {entry.fingerprint}  {when}")


def _render_targets(targets: list[keys.BackupTarget]) -> str:
    if not targets:
        return "no USB mass-storage target (insert a USB stick)"
    lines = []
    for t in targets:
        where = t.mount_point or "not mounted"
        lines.append(
            f"{t.id}  {t.device}  {t.vendor} {t.model}  {t.size_bytes // 2**20} MiB  "
            f"{t.filesystem or '?'}  {where}"
        )
    return "\n".join(lines)


@keys_group.command("targets")
@click.option("--json", "as_json", is_flag=True)
@click.option("--watch", is_flag=True, help="Keep printing the list as sticks come and go.")
@click.pass_obj
@reports_errors
def targets(daemon: Daemon, as_json: bool, watch: bool) -> None:
    """USB sticks that can take a key backup."""
    if not watch:
        with daemon.connect() as conn:
            t = conn.call(keys.LIST_BACKUP_TARGETS).targets
        echo_json(t) if as_json else click.echo(_render_targets(t))
        return
    replies = follow(daemon.reconnector(), keys.WATCH_BACKUP_TARGETS, NoParams(), silence_s=None)
    for t in (r.targets for r in replies):
        echo_json(t) if as_json else click.echo(_render_targets(t) + "\n")


@click.group("secrets")
def secrets_group() -> None:
    """The secret store: names and metadata only; values go in, never come out."""


@secrets_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def list_secrets(daemon: Daemon, as_json: bool) -> None:
    """Stored secrets: name, kind, size, master key generation, times."""
    with daemon.connect() as conn:
        items = conn.call(keys.LIST_SECRETS).secrets
    if as_json:
        echo_json(items)
        return
    for i in items:
        click.echo(
            f"{i.name:<32} {i.kind:<12} {i.size:>6} B  gen {i.generation}  updated {i.updated_at}"
        )


@secrets_group.command("set")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["password", "private-key", "credential", "totp-seed", "other"]),
    required=True,
)
@click.option(
    "--value-file",
    type=click.Path(path_type=Path, allow_dash=True),
    help="Read the value from a file ('-' for stdin) instead of a prompt.",
)
@click.pass_obj
@reports_errors
def set_secret(daemon: Daemon, name: str, kind: str, value_file: Path | None) -> None:
    """Store or replace a secret."""
    value = read_secret(value_file, f"Value of {name}", confirm=True)
    with daemon.connect() as conn:
        i = conn.call(keys.SET_SECRET, keys.SetSecretParams(name, kind, value))
    click.echo(f"stored {i.name} ({i.kind}, {i.size} bytes)")


@secrets_group.command("delete")
@click.argument("name")
@click.pass_obj
@reports_errors
def delete_secret(daemon: Daemon, name: str) -> None:
    """Delete a secret (its sealed record is overwritten first)."""
    with daemon.connect() as conn:
        conn.call(keys.DELETE_SECRET, keys.SecretNameParams(name))
    click.echo(f"deleted {name}")
