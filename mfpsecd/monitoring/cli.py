"""`mfpsec monitoring …`: where the device reports its security to (SIEM destinations,
alert channels and rules, the SNMP subagent), read and changed as one document."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click
import msgspec

from mfpsecd.base.escape import shown
from mfpsecd.cli.common import Daemon, echo_json, reports_errors
from mfpsecd.monitoring import api


def render(s: api.Settings) -> str:
    d = s.document
    where = (
        "the configuration file"
        if s.source == "configuration"
        else f"{shown(s.set_by)} at {s.set_at}"
    )
    lines = [f"monitoring settings (from {where})"]
    for f in d.forward:
        tls = f", CA {shown(f.ca_file or '')}" if f.transport is api.Transport.TLS else ""
        mutual = ", client certificate" if f.client_cert_file else ""
        lines.append(
            f"  SIEM {shown(f.name)}: {shown(f.host)}:{f.port} {f.transport.value} "
            f"{f.format.value}{tls}{mutual}"
        )
    if not d.forward:
        lines.append("  SIEM: none")
    mail, trap = d.notify.mail, d.notify.snmp
    lines.append(
        f"  mail: {shown(mail.host)}:{mail.port} to {', '.join(map(shown, mail.recipients))}"
        if mail
        else "  mail: none"
    )
    lines.append(
        f"  traps: {shown(trap.host)}:{trap.port} {trap.version.value}"
        + (
            f" user {shown(trap.user)} {trap.auth_protocol.value}/{trap.priv_protocol.value}"
            if trap.version is api.SnmpVersion.V3
            else ""
        )
        if trap
        else "  traps: none (direct)"
    )
    sub = d.snmp
    lines.append(
        f"  SNMP subagent: snmpd at {shown(sub.agentx_socket)}, enterprise {sub.enterprise}, "
        f"traps {'on' if sub.traps else 'off'}"
        if sub.agentx_socket
        else "  SNMP subagent: none"
    )
    rules = d.notify.rules
    lines.append(
        f"  alert rules: {len(rules)} of the administrator's"
        if rules is not None
        else f"  alert rules: the {len(s.default_rules)} default rules"
    )
    for secret in s.secrets:
        state = "stored" if secret.stored else click.style("NOT STORED", fg="red")
        lines.append(f"  secret {shown(secret.name)}: {state}")
    return "\n".join(lines)


def _document(path: Path) -> api.Document:
    """A JSON document (as `show --json` prints its `document`), or a TOML file with the
    configuration's [[audit.forward]], [notify] and [snmp] sections."""
    try:
        if path.suffix == ".toml":
            raw: dict[str, Any] = tomllib.loads(path.read_text())
            data = {
                "forward": raw.get("audit", {}).get("forward", []),
                "notify": raw.get("notify", {}),
                "snmp": raw.get("snmp", {}),
            }
        else:
            data = json.loads(path.read_text())
            data = data.get("document", data)
        return msgspec.convert(data, api.Document)
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="FILE") from None


@click.group("monitoring")
def monitoring_group() -> None:
    """SIEM destinations, alert channels and rules, the SNMP subagent."""


@monitoring_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def show(daemon: Daemon, as_json: bool) -> None:
    """The monitoring settings in force and where they come from."""
    with daemon.connect() as conn:
        s = conn.call(api.GET_SETTINGS)
    echo_json(s) if as_json else click.echo(render(s))


@monitoring_group.command("set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def set_(daemon: Daemon, file: Path, as_json: bool) -> None:
    """Replace the monitoring settings with FILE (JSON as `show --json` prints it, or
    TOML with the configuration file's sections): checked as a whole, applied at once."""
    document = _document(file)
    with daemon.connect() as conn:
        s = conn.call(api.SET_SETTINGS, api.SetParams(document))
    echo_json(s) if as_json else click.echo(render(s))


@monitoring_group.command("reset")
@click.pass_obj
@reports_errors
def reset(daemon: Daemon) -> None:
    """Go back to the configuration file's settings, at once."""
    with daemon.connect() as conn:
        s = conn.call(api.RESET_SETTINGS)
    click.echo(render(s))
