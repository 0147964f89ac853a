"""`mfpsecd`: the daemon's command line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click
import structlog

from mfpsecd import __version__
from mfpsecd.base import optional
from mfpsecd.base.clock import SystemClock
from mfpsecd.base.config.loader import DEFAULT_CONFIG, load_board, load_config
from mfpsecd.base.config.schema import SecurityMode
from mfpsecd.base.errors import EX_TEMPFAIL, EX_USAGE, MfpsecError
from mfpsecd.daemon import logging as app_logging
from mfpsecd.daemon.event_loop import event_loop_factory

# _capability: each command imports the capabilities it drives when it runs, not when the
# module loads: a boot unit's command (fw-verify before the network, net-restore) pays
# for its own only, and `--help`, the man page and shell completion need none of them.

# Every command reads the same configuration and board profile.
_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Daemon configuration (TOML).",
)
_BOARD = click.option("--board", help="Board profile: a name in daemon.board_dir, or a .toml path.")


@click.group()
@click.version_option(__version__, prog_name="mfpsecd")
def cli() -> None:
    """mfpsecd, the security daemon of the MFP controller."""


@cli.command()
@_CONFIG
@_BOARD
def run(config_path: Path, board: str | None) -> None:
    """Run the daemon in the foreground (systemd Type=notify)."""
    # Imported here: the boot unit's fw-verify must not pay for loading every service.
    from mfpsecd.daemon.lifecycle import make_daemon  # noqa: PLC0415

    app_logging.configure("info")
    log = structlog.get_logger("mfpsecd")
    try:
        config = load_config(config_path)
        app_logging.configure(config.daemon.log_level.value)
        log = structlog.get_logger("mfpsecd")
        daemon = make_daemon(config, load_board(config, board))
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(daemon.run())
    except MfpsecError as exc:
        log.error("startup_failed", error=exc.code.wire_name, message=exc.message, **exc.params)
        click.echo(f"mfpsecd: {exc.message}", err=True)
        sys.exit(exc.code.exit_status)


@cli.command("check-config")
@_CONFIG
@_BOARD
def check_config(config_path: Path, board: str | None) -> None:
    """Validate the configuration and board profile, then exit."""
    try:
        config = load_config(config_path)
        b = load_board(config, board)
        optional.check_config(config)
    except MfpsecError as exc:
        click.echo(f"mfpsecd: {exc.message}", err=True)
        sys.exit(exc.code.exit_status)
    click.echo(f"ok: board {b.profile.board.name} ({b.source})")


@cli.command("fw-verify")
@_CONFIG
@_BOARD
@click.option(
    "--boot",
    is_flag=True,
    required=True,
    help="Boot-time verification (the mfpsecd-fwverify unit): choose the slot, "
    "verify it, measure it into the PCR, write the boot record.",
)
def fw_verify(config_path: Path, board: str | None, boot: bool) -> None:
    """Verify the firmware slot that boots (F-2, B-1). Exit status: 0 when verified, or
    in normal security mode; otherwise the failure's status (the boot stops)."""
    from mfpsecd.firmware import wiring as firmware  # noqa: PLC0415 (see _capability)

    app_logging.configure("info")
    try:
        config = load_config(config_path)
        b = load_board(config, board)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            record = runner.run(firmware.boot_verification(config, b))
    except MfpsecError as exc:
        click.echo(f"mfpsecd fw-verify: {exc.message}", err=True)
        mode = None
        with contextlib.suppress(MfpsecError):
            mode = load_config(config_path).security.mode
        # Without a usable configuration the mode is unknown: fail closed.
        sys.exit(0 if mode is SecurityMode.NORMAL else exc.code.exit_status)
    click.echo(firmware.describe(record), err=record.result != "verified")
    sys.exit(firmware.exit_status(record, config.security.mode))


@cli.command("net-restore")
@_CONFIG
@_BOARD
def net_restore(config_path: Path, board: str | None) -> None:
    """Put the IP filter in place before the network comes up (mfpsecd-netfilter unit):
    the last rules the daemon applied, else rules that admit nothing."""
    from mfpsecd.ipfilter import wiring as network  # noqa: PLC0415 (see _capability)

    app_logging.configure("info")
    try:
        b = load_board(load_config(config_path), board)
        if not b.profile.nics:
            click.echo("mfpsecd net-restore: the board has no network interfaces")
            return
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            what = runner.run(network.restore(b))
    except MfpsecError as exc:
        click.echo(f"mfpsecd net-restore: {exc.message}", err=True)
        sys.exit(exc.code.exit_status)
    click.echo(f"ip filter: {what}")


@cli.command("purge-helper")
@click.option(
    "--user",
    default="mfpsecd",
    show_default=True,
    help="The daemon's user (a name or a uid): the one peer, besides root, that is served.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(0.1, 600),
    default=10.0,
    show_default=True,
    help="Seconds a caller has to send its whole request.",
)
def purge_helper(user: str, read_timeout: float) -> None:
    """Answer one device purge request on standard input, a connected socket (the
    mfpsecd-purge@ unit, one instance per connection), then exit. Runs with the
    capabilities the device commands need, which the daemon does not hold."""
    import socket  # noqa: PLC0415 (see _capability)

    from mfpsecd.wipe.backends.purge_helper import PurgeHelper, allowed_uids  # noqa: PLC0415

    app_logging.configure("info")
    try:
        conn = socket.socket(fileno=0)
    except OSError as exc:
        click.echo(f"mfpsecd purge-helper: standard input is not a socket: {exc}", err=True)
        sys.exit(EX_USAGE)
    if conn.family != socket.AF_UNIX:
        click.echo("mfpsecd purge-helper: standard input is not a Unix socket", err=True)
        sys.exit(EX_USAGE)
    with conn:
        PurgeHelper(allowed_uids=allowed_uids(user), read_timeout_s=read_timeout).serve(conn)


@cli.command("fw-alert")
@_CONFIG
@_BOARD
@click.option(
    "--retry-for",
    type=click.FloatRange(0, 86400),
    default=300,
    show_default=True,
    help="Seconds to keep trying a mail or trap that did not go out.",
)
def fw_alert(config_path: Path, board: str | None, retry_for: float) -> None:
    """Show this power-on's firmware verification (the safe state's console message) and
    send the alerts waiting in the outbox (the failed verification's). Exit status 75
    when a channel is still failing, so that the unit tries again later."""
    from mfpsecd.alerts import wiring as alerts  # noqa: PLC0415 (see _capability)
    from mfpsecd.firmware import wiring as firmware  # noqa: PLC0415
    from mfpsecd.firmware.service import load_boot_record  # noqa: PLC0415

    app_logging.configure("info")
    try:
        config = load_config(config_path)
        b = load_board(config, board)
    except MfpsecError as exc:
        click.echo(f"mfpsecd fw-alert: {exc.message}", err=True)
        sys.exit(exc.code.exit_status)
    record = load_boot_record(b.paths.run_dir)
    if record is None:
        click.echo("FIRMWARE NOT VERIFIED: the boot verification did not run at this power-on")
    else:
        click.echo(firmware.describe(record))
        if record.result != "verified":
            click.echo(
                "The device does not start. A service engineer must install firmware "
                "signed for this model (see the audit log and the journal)."
            )
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            delivery = runner.run(
                alerts.send_waiting(config, b, SystemClock(), retry_for_s=retry_for)
            )
    except MfpsecError as exc:
        click.echo(f"mfpsecd fw-alert: alerts not sent: {exc.message}", err=True)
        sys.exit(exc.code.exit_status)
    if delivery is None:
        return
    click.echo(f"alerts: {delivery.mails} mail(s) and {delivery.traps} trap(s) sent")
    for alert in delivery.waiting:
        click.echo(
            f"alert {alert.rule!r} (audit record {alert.record.seq}) waiting: {alert.last_error}"
        )
    if delivery.retry:
        sys.exit(EX_TEMPFAIL)


@cli.command("fw-sign")
@click.option(
    "--key",
    required=True,
    help="The vendor's signing key: a PEM file (ECDSA P-384 or Ed25519), or a pkcs11: URI "
    "naming an ECDSA P-384 key in an HSM (with module-path and pin-source=file:).",
)
@click.option(
    "--certificate",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Its certificate (PEM), issued by a firmware root.",
)
@click.option(
    "--pq-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="An ML-DSA-87 key (PEM) for a hybrid signature (CNSA 2.0), with --pq-certificate.",
)
@click.option(
    "--pq-certificate",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Its certificate (PEM), issued by a post-quantum firmware root.",
)
@click.option("--product", required=True)
@click.option("--version", "fw_version", required=True, help="The firmware version.")
@click.option(
    "--epoch",
    type=click.IntRange(0, 2**31 - 1),
    required=True,
    help="The security epoch: raise it when older firmware must no longer install.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="A hardware model the firmware fits (repeat for more).",
)
@click.option(
    "--tree",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Copy this directory in as the bundle's tree (else sign OUT/tree as it is).",
)
@click.option(
    "--archive",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the bundle archive that `mfpsec fw update` installs.",
)
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
def fw_sign(
    *,
    key: str,
    certificate: Path,
    pq_key: Path | None,
    pq_certificate: Path | None,
    product: str,
    fw_version: str,
    epoch: int,
    models: tuple[str, ...],
    tree: Path | None,
    archive: Path | None,
    out: Path,
) -> None:
    """The vendor side: sign a firmware tree into the bundle directory OUT."""
    from mfpsecd.firmware import wiring as firmware  # noqa: PLC0415 (see _capability)

    try:
        digest = firmware.sign(
            key=key,
            certificate=certificate,
            pq_key=pq_key,
            pq_certificate=pq_certificate,
            product=product,
            version=fw_version,
            epoch=epoch,
            models=list(models),
            out=out,
            tree=tree,
            archive=archive,
        )
    except MfpsecError as exc:
        reason = exc.params.get("reason")
        click.echo(f"mfpsecd fw-sign: {exc.message}" + (f" ({reason})" if reason else ""), err=True)
        sys.exit(exc.code.exit_status)
    click.echo(
        f"signed {out}: version {fw_version}, epoch {epoch}, manifest {digest.hex()}"
        + (f"; archive {archive}" if archive else "")
    )


if __name__ == "__main__":
    cli()
