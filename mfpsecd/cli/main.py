"""`mfpsec` entry point: global options and the command groups."""

from __future__ import annotations

import click

from mfpsecd import __version__
from mfpsecd.audit import cli as audit_cmd
from mfpsecd.auth import cli as auth_cmd
from mfpsecd.auth import users_cli as users_cmd
from mfpsecd.cli.common import Daemon
from mfpsecd.client import DEFAULT_SOCKET
from mfpsecd.firmware import cli as fw_cmd
from mfpsecd.ipfilter import cli as net_cmd
from mfpsecd.keys import cli as keys_cmd
from mfpsecd.monitoring import cli as monitoring_cmd
from mfpsecd.remote import cli as remote_cmd
from mfpsecd.store import cli as store_cmd
from mfpsecd.system import cli as status_cmd
from mfpsecd.usb import cli as usb_cmd
from mfpsecd.wipe import cli as wipe_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mfpsec")
@click.option(
    "--socket",
    "socket_path",
    envvar="MFPSEC_SOCKET",
    default=DEFAULT_SOCKET,
    show_default=True,
    show_envvar=True,
    help="The daemon's Varlink socket.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each reply.",
)
@click.pass_context
def cli(ctx: click.Context, socket_path: str, timeout: float) -> None:
    """Maintenance CLI of the mfpsecd security daemon.

    Exit status: 0 on success, otherwise the sysexits.h value of the error
    (69 daemon unreachable, 77 permission denied, 65 invalid parameter, ...).
    """
    ctx.obj = Daemon(socket_path, timeout)


cli.add_command(status_cmd.status)
cli.add_command(status_cmd.posture)
cli.add_command(status_cmd.events)
cli.add_command(keys_cmd.keys_group)
cli.add_command(keys_cmd.secrets_group)
cli.add_command(audit_cmd.audit_group)
cli.add_command(auth_cmd.login)
cli.add_command(auth_cmd.logout)
cli.add_command(auth_cmd.whoami)
cli.add_command(auth_cmd.passwd)
cli.add_command(auth_cmd.totp_group)
cli.add_command(users_cmd.users_group)
cli.add_command(users_cmd.policy_group)
cli.add_command(wipe_cmd.wipe_group)
cli.add_command(store_cmd.store_group)
cli.add_command(fw_cmd.fw_group)
cli.add_command(net_cmd.net_group)
cli.add_command(usb_cmd.usb_group)
cli.add_command(monitoring_cmd.monitoring_group)
cli.add_command(remote_cmd.remote_group)


if __name__ == "__main__":
    cli()
