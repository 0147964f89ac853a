"""`mfpsec login|logout|whoami|passwd` and `mfpsec totp …`: one's own session and
credentials. Passwords are prompted without echo, or read from a file / stdin
(--password-file -) for scripts."""

from __future__ import annotations

from pathlib import Path

import click

from mfpsecd.auth import api as auth
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.cli import session_file
from mfpsecd.cli.common import (
    PASSWORD_FILE,
    Daemon,
    echo_json,
    read_secret,
    read_secrets,
    reports_errors,
)

_MUST_CHANGE = {
    "temporary": "this is a temporary password",
    "expired": "the password has expired",
    "policy": "the password does not meet the current password rules",
}


def must_change_text(reason: str) -> str:
    why = _MUST_CHANGE.get(reason, reason)
    return f"{why}: change it now with `mfpsec passwd` (nothing else is allowed until then)"


@click.command()
@click.option("--user", "-u", help="The account to log in as (prompted for).")
@click.option("--otp", default="", help="The current TOTP code (prompted for when needed).")
@click.option(
    "--card", is_flag=True, help="Log in with the PKI card in the reader and its PIN instead."
)
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def login(
    daemon: Daemon, user: str | None, otp: str, card: bool, password_file: Path | None
) -> None:
    """Log in; the session is kept for the following mfpsec commands of this user."""
    if card:
        pin = read_secret(password_file, "Card PIN", False)
        with daemon.connect() as conn:
            info = conn.call(auth.LOGIN_CARD, auth.CardLoginParams(pin))
        _logged_in(daemon, info)
        return
    user = user or click.prompt("User")
    password = read_secret(password_file, "Password", False)
    with daemon.connect() as conn:
        try:
            info = conn.call(auth.LOGIN, auth.LoginParams(user, bytearray(password), otp))
        except MfpsecError as exc:
            if exc.code is not ErrorCode.SECOND_FACTOR_REQUIRED or otp:
                raise
            otp = click.prompt("One-time code")
            info = conn.call(auth.LOGIN, auth.LoginParams(user, password, otp))
        finally:
            password[:] = bytes(len(password))
    _logged_in(daemon, info)


def _logged_in(daemon: Daemon, info: auth.SessionInfo) -> None:
    where = session_file.save(daemon.socket, info.token)
    click.echo(
        f"logged in as {info.user} ({info.role.value}); session {info.session}, "
        f"ends after {info.idle_minutes} idle minutes (kept in {where})"
    )
    if info.must_change:
        click.echo(
            click.style("warning: ", fg="red", bold=True) + must_change_text(info.must_change),
            err=True,
        )


@click.command()
@click.pass_obj
@reports_errors
def logout(daemon: Daemon) -> None:
    """End the session."""
    with daemon.connect() as conn:
        conn.call(auth.LOGOUT)
    session_file.forget(daemon.socket)
    click.echo("logged out")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def whoami(daemon: Daemon, as_json: bool) -> None:
    """Who the daemon sees: peer class, user, role and what this session may do."""
    with daemon.connect() as conn:
        w = conn.call(auth.WHO_AM_I)
    if as_json:
        echo_json(w)
        return
    who = f"{w.user} ({w.role}), session {w.session}" if w.user else "not logged in"
    click.echo(f"uid {w.uid}, peer class {w.peer_class}: {who}")
    if w.must_change:
        click.echo(must_change_text(w.must_change))
    click.echo("may: " + ", ".join(w.privileges))


@click.command()
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def passwd(daemon: Daemon, password_file: Path | None) -> None:
    """Change your own password (the current one is asked again)."""
    current, new = read_secrets(password_file, ("Current password", "New password"), True)
    with daemon.connect() as conn:
        conn.call(auth.CHANGE_PASSWORD, auth.ChangePasswordParams(current, new))
    click.echo("password changed")


@click.group("totp")
def totp_group() -> None:
    """Your TOTP second factor (administrator and service accounts)."""


@totp_group.command("enroll")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def totp_enroll(daemon: Daemon, password_file: Path | None) -> None:
    """Create a new seed; add it to an authenticator app, then `mfpsec totp confirm CODE`."""
    password = read_secret(password_file, "Password", False)
    with daemon.connect() as conn:
        e: auth.TotpEnrollment = conn.call(auth.ENROLL_TOTP, auth.PasswordParams(password))
    click.echo(f"secret: {e.secret}\nuri: {e.uri}")
    click.echo("Not active yet: confirm with a code from the app (mfpsec totp confirm CODE).")


@totp_group.command("confirm")
@click.argument("code")
@click.pass_obj
@reports_errors
def totp_confirm(daemon: Daemon, code: str) -> None:
    """Activate the enrolled seed with its current code."""
    with daemon.connect() as conn:
        conn.call(auth.CONFIRM_TOTP, auth.CodeParams(code))
    click.echo("second factor active: logins now ask for a one-time code")
