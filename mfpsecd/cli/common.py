"""What every command shares: the connection options, error reporting and exit statuses."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import click
import msgspec

from mfpsecd.client import Connection
from mfpsecd.errors import MfpsecError

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Target:
    socket: str
    timeout: float

    def connect(self) -> Connection:
        return Connection(self.socket, self.timeout)


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print an MfpsecError as one line on stderr and exit with its code's status."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MfpsecError as exc:
            detail = ", ".join(f"{k}={v}" for k, v in exc.params.items())
            click.echo(f"mfpsec: {exc.message}" + (f" ({detail})" if detail else ""), err=True)
            click.echo(f"mfpsec: error {exc.code.wire_name}", err=True)
            sys.exit(exc.code.exit_status)

    return wrapper


def echo_json(value: object) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())
