"""`mfpsec usb …`: what may be plugged into the USB ports (SPEC U-4)."""

from __future__ import annotations

import click
import msgspec

from mfpsecd.base.escape import shown
from mfpsecd.cli.common import Daemon, echo_json, reports_errors
from mfpsecd.usb import api

_USES = ", ".join(u.value for u in api.Use)


def render_devices(d: api.Devices) -> str:
    if not d.buses:
        head = "usb: this board has no USB bus"
    elif d.locked and not d.failure:
        head = f"usb: {', '.join(d.buses)} locked: nothing binds a driver before it is judged"
    else:
        head = click.style("usb: NOT ENFORCED", fg="red", bold=True) + (
            f": {shown(d.failure)}" if d.failure else ": a bus is not locked"
        )
    lines = [head]
    for dev in d.devices:
        verdict = (
            click.style("allowed", fg="green") if dev.allowed else click.style("REFUSED", fg="red")
        )
        ident = f"{dev.vendor}:{dev.product}" if dev.vendor else "????:????"
        name = " ".join(shown(s) for s in (dev.manufacturer, dev.product_name) if s)
        held = "" if dev.enforced else click.style(" (not enforced)", fg="red")
        lines += [
            f"  {dev.device:<10} {verdict}{held} {ident} {name}",
            f"    port {dev.port or 'not named by the board'}; offers "
            f"{', '.join(dev.uses) or 'nothing'}"
            + (f"; serial {shown(dev.serial)}" if dev.serial else ""),
            f"    {shown(dev.reason)}"
            + ("" if dev.rule in dev.reason else f" (rule {dev.rule})")
            + f"; {dev.by}, {dev.decided_at}",
        ]
    if not d.devices:
        lines.append("  no device connected")
    return "\n".join(lines)


def render_policy(p: api.Policy) -> str:
    where = "the configuration" if p.set_by == "configuration" else f"{p.set_by} at {p.set_at}"
    lines = [f"usb policy (from {where}); the board's ports: {', '.join(p.board_ports) or 'none'}"]
    for r in p.ports:
        lines.append(f"  port {r.port}: {', '.join(u.value for u in r.allow) or 'nothing'}")
    lines.append(f"  other ports: {', '.join(u.value for u in p.default) or 'nothing'}")
    for a in p.approved:
        lines.append(
            f"  approved {a.vendor}:{a.product}"
            + (f" serial {shown(a.serial)}" if a.serial else "")
            + (f" on {a.port}" if a.port else " on any port")
        )
    return "\n".join(lines)


def _uses(text: str) -> list[api.Use]:
    try:
        return [api.Use(u.strip()) for u in text.split(",") if u.strip()]
    except ValueError:
        raise click.BadParameter(f"categories are: {_USES}") from None


def _approved(text: str) -> api.Approved:
    """VID:PID[:SERIAL][@PORT]"""
    ident, _, port = text.partition("@")
    vendor, _, rest = ident.partition(":")
    product, _, serial = rest.partition(":")
    try:
        return msgspec.convert(
            {"vendor": vendor, "product": product, "serial": serial, "port": port}, api.Approved
        )
    except msgspec.ValidationError as exc:
        raise click.BadParameter(f"{text!r}: VID:PID[:SERIAL][@PORT] in hex ({exc})") from None


@click.group("usb")
def usb_group() -> None:
    """USB ports: the connected devices, the policy, one-shot allow and block."""


@usb_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def show(daemon: Daemon, as_json: bool) -> None:
    """The connected devices and the decision for each."""
    with daemon.connect() as conn:
        d = conn.call(api.LIST_DEVICES)
    echo_json(d) if as_json else click.echo(render_devices(d))


@usb_group.command("policy")
@click.option(
    "--port",
    "ports",
    multiple=True,
    metavar="PORT=USES",
    help=f"What a port allows, comma-separated ({_USES}); PORT= allows nothing.",
)
@click.option("--unset-port", multiple=True, metavar="PORT", help="The port follows the default.")
@click.option("--default", "default", metavar="USES", help="What every other port allows.")
@click.option(
    "--approve",
    multiple=True,
    metavar="VID:PID[:SERIAL][@PORT]",
    help="Allow a device by identity.",
)
@click.option("--forget", multiple=True, metavar="VID:PID[:SERIAL][@PORT]", help="Undo --approve.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def policy(
    daemon: Daemon,
    *,
    ports: tuple[str, ...],
    unset_port: tuple[str, ...],
    default: str | None,
    approve: tuple[str, ...],
    forget: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show the USB port policy, or change parts of it (the rest stays as it is). A
    change applies to the connected devices at once."""
    with daemon.connect() as conn:
        p = conn.call(api.GET_POLICY)
        if ports or unset_port or default is not None or approve or forget:
            rules = {r.port: r.allow for r in p.ports}
            for text in ports:
                name, sep, uses = text.partition("=")
                if not sep:
                    raise click.BadParameter(f"{text!r}: PORT=USES", param_hint="--port")
                rules[name] = _uses(uses)
            for name in unset_port:
                rules.pop(name, None)
            gone = {_approved(t) for t in forget}
            approved = [a for a in p.approved if a not in gone]
            approved += [a for a in map(_approved, approve) if a not in approved]
            p = conn.call(
                api.SET_POLICY,
                api.PolicyParams(
                    ports=[api.PortRule(k, v) for k, v in rules.items()],
                    default=p.default if default is None else _uses(default),
                    approved=approved,
                ),
            )
    echo_json(p) if as_json else click.echo(render_policy(p))


def _once(daemon: Daemon, allowed: bool, device: str) -> None:
    with daemon.connect() as conn:
        dev = conn.call(api.ALLOW if allowed else api.BLOCK, api.DeviceParams(device))
    click.echo(render_devices(api.Devices([dev], ["-"], True, "")).split("\n", 1)[1])


@usb_group.command("allow")
@click.argument("device")
@click.pass_obj
@reports_errors
def allow(daemon: Daemon, device: str) -> None:
    """Allow a connected DEVICE (its name in `mfpsec usb show`) until it is unplugged."""
    _once(daemon, True, device)


@usb_group.command("block")
@click.argument("device")
@click.pass_obj
@reports_errors
def block(daemon: Daemon, device: str) -> None:
    """Refuse a connected DEVICE now (its drivers unbound) until it is unplugged."""
    _once(daemon, False, device)
