"""`mfpsec net …`: the IP filter (SPEC N-1..N-4)."""

from __future__ import annotations

from typing import BinaryIO

import click
import msgspec

from mfpsecd.cli.common import Daemon, echo_json, reports_errors
from mfpsecd.ipfilter import api as network
from mfpsecd.varlink.client import Connection
from mfpsecd.varlink.schema import Method, P

_ON_OFF = click.Choice(["on", "off"])
_CONFIRM = click.option(
    "--confirm", is_flag=True, help="Apply even if it cuts off the administrator's remote session."
)


def _effective(what: str, entered: list[str], merged: list[str]) -> list[str]:
    """The merged set, when it reads differently from the ranges as entered."""
    if merged == entered:
        return []
    return [f"  in effect ({what}, merged): {', '.join(merged) or 'none'}"]


def render(r: network.Rules) -> str:
    loaded = (
        click.style("loaded", fg="green", bold=True)
        if r.in_kernel
        else click.style("NOT LOADED", fg="red", bold=True)
    )
    quick = "on: only " + (", ".join(r.quick_ranges) or "nothing") if r.quick else "off"
    lines = [
        f"ip filter: {loaded} (applied {r.applied_at or 'never'})",
        f"addresses: {', '.join(r.addresses) or 'none'}",
        f"permitted: {', '.join(r.permitted) or 'any source (no range given)'}",
        f"refused:   {', '.join(r.refused) or 'none'}",
        *_effective("permitted", r.permitted, r.effective_permitted),
        *_effective("refused", r.refused, r.effective_refused),
        "banned:    "
        + (", ".join(f"{b.range} ({b.left_s // 60 + 1} min left)" for b in r.banned) or "none"),
        f"quick filter: {quick}",
        f"no forwarding between {', '.join(r.wired) or '-'} and {', '.join(r.wireless) or '-'}",
        "services:",
    ]
    for s in r.services:
        state = click.style("on ", fg="green") if s.on else click.style("off", fg="yellow")
        lines.append(f"  {state} {s.name:<10} {' '.join(s.ports)}")
    return "\n".join(lines)


@click.group("net")
def net_group() -> None:
    """The IP filter: show, allow/deny/remove ranges, quick filter, service ports."""


@net_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def show(daemon: Daemon, as_json: bool) -> None:
    """The rules in force and what they admit now."""
    with daemon.connect() as conn:
        r = _all_rules(conn)
    echo_json(r) if as_json else click.echo(render(r))


_LISTS = ("permitted", "refused", "effective_permitted", "effective_refused")


def _all_rules(conn: Connection) -> network.Rules:
    """The rules with the whole lists, page by page."""
    first = conn.call(network.GET_RULES, network.RulesQuery())
    lists: dict[str, list[str]] = {k: list(getattr(first, k)) for k in _LISTS}
    offset = network.PAGE
    while any(offset < getattr(first, f"{k}_total") for k in _LISTS):
        page = conn.call(network.GET_RULES, network.RulesQuery(offset))
        for k in _LISTS:
            lists[k] += getattr(page, k)
        offset += network.PAGE
    return msgspec.structs.replace(first, **lists)


def _change(daemon: Daemon, method: Method[P, network.Rules], params: P) -> None:
    with daemon.connect() as conn:
        click.echo(render(conn.call(method, params)))


_RANGE_METHODS = {"allow": network.ALLOW, "deny": network.DENY, "remove": network.REMOVE}


def _range_command(name: str, doc: str) -> None:
    @net_group.command(name, help=doc)
    @click.argument("range_text", metavar="RANGE")
    @_CONFIRM
    @click.pass_obj
    @reports_errors
    def command(daemon: Daemon, range_text: str, confirm: bool) -> None:
        _change(daemon, _RANGE_METHODS[name], network.RangeParams(range_text, confirm=confirm))


_range_command(
    "allow",
    "Permit a source range (CIDR, one address, or start-end); once any "
    "is given for IPv4 (IPv6), only those sources of it are admitted.",
)
_range_command("deny", "Refuse a source range.")
_range_command("remove", "Remove a permitted or refused range.")


@net_group.command("import")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--refused",
    "which",
    flag_value="refused",
    default=True,
    help="Into the refused list (the default).",
)
@click.option("--permitted", "which", flag_value="permitted", help="Into the permitted list.")
@click.option(
    "--replace",
    is_flag=True,
    help="The list becomes exactly the file's ranges (else they are added).",
)
@_CONFIRM
@click.pass_obj
@reports_errors
def import_(daemon: Daemon, file: BinaryIO, which: str, replace: bool, confirm: bool) -> None:
    """Import a file of ranges (one per line: CIDR, an address or start-end; `#` starts a
    comment; `-` reads standard input). Checked as a whole, applied as one transaction:
    a bad line imports nothing."""
    with daemon.connect() as conn:
        descriptor = conn.pass_descriptor(file.fileno())
        r = conn.call(
            network.IMPORT,
            network.ImportParams(
                descriptor, network.RangeList(which), replace=replace, confirm=confirm
            ),
        )
    click.echo(
        f"{which}: {r.ranges} range(s) in the file, {r.added} added, {r.unchanged} "
        f"already there, {r.removed} removed, {r.duplicates} repeated in the file; "
        f"the list holds {getattr(r.rules, which + '_total')}"
    )


@net_group.command("unban")
@click.argument("range_text", metavar="RANGE")
@click.pass_obj
@reports_errors
def unban(daemon: Daemon, range_text: str) -> None:
    """Lift a ban (a source that tripped the flood detector) before it expires."""
    _change(daemon, network.UNBAN, network.RangeParams(range_text))


@net_group.command("quick")
@click.argument("state", type=_ON_OFF)
@_CONFIRM
@click.pass_obj
@reports_errors
def quick(daemon: Daemon, state: str, confirm: bool) -> None:
    """The quick IP filter: only the device's own /24 and the /64s of its global IPv6
    addresses, following their changes."""
    _change(daemon, network.SET_QUICK, network.QuickParams(state == "on", confirm=confirm))


@net_group.command("port")
@click.argument("service")
@click.argument("state", type=_ON_OFF)
@_CONFIRM
@click.pass_obj
@reports_errors
def port(daemon: Daemon, service: str, state: str, confirm: bool) -> None:
    """Switch a network service's ports (see `mfpsec net show`) on or off."""
    _change(daemon, network.SET_PORT, network.PortParams(service, state == "on", confirm=confirm))


@net_group.command("apply")
@click.option("--dry-run", is_flag=True, help="Print the nftables JSON; apply nothing.")
@click.pass_obj
@reports_errors
def apply(daemon: Daemon, dry_run: bool) -> None:
    """Load the stored rules into the kernel again (or show them with --dry-run)."""
    with daemon.connect() as conn:
        if dry_run:
            click.echo(conn.call(network.PREVIEW).nftables_json)
            return
        click.echo(render(conn.call(network.APPLY)))
