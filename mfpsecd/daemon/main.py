"""`mfpsecd`: the daemon's command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import structlog
import uvloop

from mfpsecd import __version__
from mfpsecd.daemon import logging as app_logging
from mfpsecd.daemon.lifecycle import make_daemon
from mfpsecd.daemon.settings import DEFAULT_CONFIG, load_board, load_config
from mfpsecd.errors import MfpsecError


@click.group()
@click.version_option(__version__, prog_name="mfpsecd")
def cli() -> None:
    """mfpsecd, the security daemon of the MFP controller."""


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help="Daemon configuration (TOML).")
@click.option("--board", help="Board profile: a name in daemon.board_dir, or a .toml path.")
def run(config_path: Path, board: str | None) -> None:
    """Run the daemon in the foreground (systemd Type=notify)."""
    app_logging.configure("info")
    log = structlog.get_logger("mfpsecd")
    try:
        config = load_config(config_path)
        app_logging.configure(config.daemon.log_level.value)
        log = structlog.get_logger("mfpsecd")
        daemon = make_daemon(config, load_board(config, board))
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(daemon.run())
    except MfpsecError as exc:
        log.error("startup_failed", error=exc.code.wire_name, message=exc.message, **exc.params)
        click.echo(f"mfpsecd: {exc.message}", err=True)
        sys.exit(exc.code.exit_status)


@cli.command("check-config")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
              show_default=True)
@click.option("--board", help="Board profile name or path.")
def check_config(config_path: Path, board: str | None) -> None:
    """Validate the configuration and board profile, then exit."""
    try:
        config = load_config(config_path)
        b = load_board(config, board)
    except MfpsecError as exc:
        click.echo(f"mfpsecd: {exc.message}", err=True)
        sys.exit(exc.code.exit_status)
    click.echo(f"ok: board {b.profile.board.name} ({b.source})")


if __name__ == "__main__":
    cli()
