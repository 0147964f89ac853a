"""`mfpsec users …` and `mfpsec policy …`: accounts and the authentication policy (an
administrator's session, see `mfpsec login`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import msgspec

from mfpsecd.auth import api as auth
from mfpsecd.base.access import Role
from mfpsecd.cli.common import (
    PASSWORD_FILE,
    Daemon,
    echo_json,
    read_secret,
    read_secrets,
    reports_errors,
)

_ROLES = click.Choice([r.value for r in Role])


@click.group("users")
def users_group() -> None:
    """User accounts: list, add, set passwords, unlock, remove."""


@users_group.command("init")
@click.argument("user")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def users_init(daemon: Daemon, user: str, password_file: Path | None) -> None:
    """First start: create the administrator account (possible once)."""
    password = read_secret(password_file, "Administrator password", True)
    with daemon.connect() as conn:
        conn.call(auth.INITIALIZE_ADMINISTRATOR, auth.InitializeParams(user, password))
    click.echo(f"administrator {user} created: log in with `mfpsec login -u {user}`")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def users_list(daemon: Daemon, as_json: bool) -> None:
    """Every account with its role, password age, lockout and factors."""
    with daemon.connect() as conn:
        users = conn.call(auth.LIST_USERS).users
    if as_json:
        echo_json(users)
        return
    click.echo(
        f"{'USER':<16} {'ROLE':<13} {'PASSWORD SET':<20} {'FAILURES':>8}  "
        f"{'LOCKED':<8} {'TOTP':<4}  LAST LOGIN"
    )
    for u in users:
        locked = f"{u.locked_for_s // 60 + 1} min" if u.locked_for_s else "-"
        pw = u.password_set_at + (" (temp)" if u.temporary else "")
        click.echo(
            f"{u.user:<16} {u.role.value:<13} {pw:<20} {u.failures:>8}  "
            f"{locked:<8} {'yes' if u.totp else 'no':<4}  {u.last_login_at or '-'}"
        )


@users_group.command("add")
@click.argument("user")
@click.option("--role", type=_ROLES, required=True)
@click.option(
    "--permanent",
    is_flag=True,
    help="Not a temporary password (by default the user must change it at "
    "first login, within the policy's temporary_days).",
)
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def users_add(
    daemon: Daemon, user: str, role: str, permanent: bool, password_file: Path | None
) -> None:
    """Create an account."""
    password = read_secret(password_file, f"Password for {user}", True)
    with daemon.connect() as conn:
        u = conn.call(auth.ADD_USER, auth.AddUserParams(user, Role(role), password, not permanent))
    click.echo(
        f"added {u.user} ({u.role.value})"
        + (": temporary password, to be changed at first login" if u.temporary else "")
    )


@users_group.command("passwd")
@click.argument("user")
@click.option("--permanent", is_flag=True, help="Not a temporary password.")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def users_passwd(daemon: Daemon, user: str, permanent: bool, password_file: Path | None) -> None:
    """Set another user's password; their sessions end."""
    password = read_secret(password_file, f"New password for {user}", True)
    with daemon.connect() as conn:
        conn.call(auth.SET_USER_PASSWORD, auth.SetPasswordParams(user, password, not permanent))
    click.echo(f"password of {user} set" + ("" if permanent else " (temporary)"))


@users_group.command("unlock")
@click.argument("user")
@click.pass_obj
@reports_errors
def users_unlock(daemon: Daemon, user: str) -> None:
    """Lift a lockout now."""
    with daemon.connect() as conn:
        failures = conn.call(auth.UNLOCK_USER, auth.UserParams(user)).failures
    click.echo(f"{user} unlocked ({failures} failed attempts were counted)")


@users_group.command("remove")
@click.argument("user")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@reports_errors
def users_remove(daemon: Daemon, user: str, yes: bool) -> None:
    """Delete an account (its password verifiers and TOTP seed are overwritten)."""
    if not yes:
        click.confirm(f"Remove the account {user}?", abort=True)
    with daemon.connect() as conn:
        conn.call(auth.REMOVE_USER, auth.UserParams(user))
    click.echo(f"{user} removed")


@users_group.command("card")
@click.argument("user")
@click.option(
    "--cert",
    "cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The card's certificate (PEM) to bind to the user.",
)
@click.option("--remove", is_flag=True, help="Unbind the user's card.")
@click.pass_obj
@reports_errors
def users_card(daemon: Daemon, user: str, cert: Path | None, remove: bool) -> None:
    """Bind a PKI card (its certificate) to a user, or unbind it."""
    if (cert is None) == (not remove):
        raise click.UsageError("give either --cert FILE or --remove")
    pem = "" if cert is None else cert.read_text()
    with daemon.connect() as conn:
        fp = conn.call(auth.BIND_CARD, auth.BindCardParams(user, pem)).fingerprint
    click.echo(f"card {fp} bound to {user}" if fp else f"card of {user} unbound")


@users_group.command("totp-reset")
@click.argument("user")
@click.pass_obj
@reports_errors
def users_totp_reset(daemon: Daemon, user: str) -> None:
    """Remove a user's TOTP second factor (a lost authenticator)."""
    with daemon.connect() as conn:
        conn.call(auth.RESET_TOTP, auth.UserParams(user))
    click.echo(f"second factor of {user} removed")


@users_group.command("recover")
@click.argument("user")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def users_recover(daemon: Daemon, user: str, password_file: Path | None) -> None:
    """Root, when no administrator can log in: recover the administrator USER with the
    code the operation panel shows (someone must be at the device). With --password-file,
    its two lines are the code and the new (temporary) password."""
    with daemon.connect() as conn:
        r = conn.call(auth.REQUEST_RECOVERY, auth.UserParams(user))
        click.echo(
            f"recovery of administrator {r.user} requested ({r.request}): the "
            f"operation panel shows its code for {r.expires_in_s} s",
            err=True,
        )
        code, password = read_secrets(
            password_file,
            ("Code shown on the operation panel", f"Temporary password for {user}"),
            True,
        )
        u = conn.call(
            auth.COMPLETE_RECOVERY,
            auth.CompleteRecoveryParams(r.request, code.decode(errors="replace"), password),
        )
    click.echo(
        f"administrator {u.user} recovered: log in with `mfpsec login -u {u.user}` "
        "and choose a new password"
    )


@click.group("policy")
def policy_group() -> None:
    """The authentication policy: password rules, lockout, session idle time."""


def _render_policy(p: auth.AuthPolicy) -> str:
    lines = []
    for section, values in msgspec.to_builtins(p).items():
        for key, value in values.items():
            shown = ",".join(sorted(value)) if isinstance(value, list) else value
            lines.append(f"{section}.{key} = {shown}")
    return "\n".join(lines)


@policy_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def policy_show(daemon: Daemon, as_json: bool) -> None:
    """The policy in force."""
    with daemon.connect() as conn:
        p = conn.call(auth.GET_POLICY)
    echo_json(p) if as_json else click.echo(_render_policy(p))


def _coerce(current: Any, text: str, key: str) -> Any:
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise click.BadParameter(f"{key}: expected true or false")
        return text.lower() in ("true", "yes", "on", "1")
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise click.BadParameter(f"{key}: expected an integer") from None
    if isinstance(current, list):
        return [v.strip() for v in text.split(",") if v.strip()]
    return text


@policy_group.command("set")
@click.argument("settings", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.pass_obj
@reports_errors
def policy_set(daemon: Daemon, settings: tuple[str, ...]) -> None:
    """Change settings, e.g. `password.min_length=15 lockout.max_failures=5
    password.required_classes=digit,upper,lower,symbol session.idle_minutes=5`."""
    with daemon.connect() as conn:
        doc: dict[str, dict[str, Any]] = msgspec.to_builtins(conn.call(auth.GET_POLICY))
        for setting in settings:
            key, sep, value = setting.partition("=")
            section, _, name = key.partition(".")
            if not sep or section not in doc or name not in doc[section]:
                known = ", ".join(f"{s}.{k}" for s, ks in doc.items() for k in ks)
                raise click.BadParameter(f"{setting!r}: expected KEY=VALUE with KEY one of {known}")
            doc[section][name] = _coerce(doc[section][name], value, key)
        try:
            policy = msgspec.convert(doc, auth.AuthPolicy)
        except msgspec.ValidationError as exc:
            raise click.BadParameter(str(exc).replace("$.", "")) from None
        p = conn.call(auth.SET_POLICY, policy)
    click.echo(_render_policy(p))
