"""What every command shares: the connection options, error reporting and exit statuses."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
import msgspec

from mfpsecd.auth import api as auth
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.escape import shown
from mfpsecd.cli import session_file
from mfpsecd.varlink.client import Connection

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Daemon:
    """The daemon a command talks to: its socket and how long to wait for a reply."""

    socket: str
    timeout: float

    def connect(self) -> Connection:
        """A connection with the session of `mfpsec login` attached, when there is one."""
        return self._connect()[0]

    def _connect(self) -> tuple[Connection, bool]:
        """→ (the connection, whether a session is attached)."""
        conn = Connection(self.socket, self.timeout)
        token = session_file.load(self.socket)
        if token is None:
            return conn, False
        try:
            conn.call(auth.RESUME, auth.ResumeParams(token))
        except MfpsecError as exc:
            if exc.code is not ErrorCode.AUTHENTICATION_REQUIRED:
                conn.close()
                raise
            session_file.forget(self.socket)  # ended or timed out: go on without it
            return conn, False
        return conn, True

    def reconnector(self) -> Callable[[], Connection]:
        """What a followed stream reconnects with. The first connection is connect()'s; a
        later one must carry a session when the first did: sessions end when the daemon
        restarts, and the stream would otherwise go on silently with less than its
        caller may see (alerts only instead of every audit record)."""
        had_session: bool | None = None

        def reconnect() -> Connection:
            nonlocal had_session
            conn, attached = self._connect()
            if had_session is None:
                had_session = attached
            elif had_session and not attached:
                conn.close()
                raise MfpsecError(
                    ErrorCode.AUTHENTICATION_REQUIRED,
                    "the session ended when the daemon restarted: log in again",
                    reason="session ended",
                )
            return conn

        return reconnect


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print an MfpsecError as one line on stderr and exit with its code's status."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MfpsecError as exc:
            # Parameters carry what the daemon was given or found (a document's fields, a
            # device's strings): escaped like any untrusted string.
            detail = ", ".join(f"{k}={shown(str(v))}" for k, v in exc.params.items())
            click.echo(
                f"mfpsec: {shown(exc.message)}" + (f" ({detail})" if detail else ""), err=True
            )
            click.echo(f"mfpsec: error {exc.code.wire_name}", err=True)
            sys.exit(exc.code.exit_status)

    return wrapper


def size_text(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} B"


def echo_json(value: object) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def read_secret(source: Path | None, prompt: str, confirm: bool) -> bytearray:
    """From a file ('-' = stdin; one trailing newline dropped) or a hidden prompt."""
    if source is None:
        text = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return bytearray(text.encode())
    raw = sys.stdin.buffer.read() if str(source) == "-" else source.read_bytes()
    data = bytearray(raw)
    if data.endswith(b"\n"):
        del data[-1:]
    return data


def read_secrets(
    source: Path | None, prompts: tuple[str, ...], confirm_last: bool
) -> list[bytearray]:
    """Several secrets: one per line of the file/stdin, or one hidden prompt each."""
    if source is None:
        return [
            read_secret(None, p, confirm_last and i == len(prompts) - 1)
            for i, p in enumerate(prompts)
        ]
    whole = read_secret(source, "", False)
    parts = [bytearray(line) for line in whole.split(b"\n")]
    whole[:] = bytes(len(whole))
    if len(parts) != len(prompts):
        for p in parts:
            p[:] = bytes(len(p))
        raise click.UsageError(f"expected {len(prompts)} lines: " + ", ".join(prompts))
    return parts


PASSWORD_FILE = click.option(
    "--password-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read the password(s) from this file, one per line ('-' = stdin), instead of prompting.",
)


def password_again(daemon: Daemon, password_file: Path | None) -> bytearray:
    """A logged-in caller's password, again, for a destructive call (zeroed once sent);
    empty for root without a session."""
    if session_file.load(daemon.socket) is None:
        return bytearray()
    return read_secret(password_file, "Password (again)", False)
