"""What services need from outside, as Protocols. Backends implement them; the daemon's
main module picks a backend per port from the board profile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Time, injected everywhere: tests drive a fake one and never sleep."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes backwards."""
        ...

    def now(self) -> dt.datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Paths:
    """Every filesystem root the daemon touches, from the board profile."""

    state_dir: Path
    run_dir: Path
    dev_root: Path
    sys_root: Path

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.sqlite3"

    @property
    def default_socket(self) -> Path:
        return self.run_dir / "mfpsecd.sock"


class StateStore(Protocol):
    """Durable state (SQLite). Work runs off the event loop, one writer at a time."""

    @property
    def schema_version(self) -> int: ...

    async def run(self, fn: Callable[[StateConnection], T]) -> T:
        """Run fn with the connection in the store's worker thread, in one transaction."""
        ...

    async def checkpoint(self) -> None: ...

    async def close(self) -> None: ...


class StateConnection(Protocol):
    """The subset of sqlite3.Connection services use inside StateStore.run."""

    def execute(self, sql: str, parameters: tuple[object, ...] = ..., /) -> StateCursor: ...


class StateCursor(Protocol):
    def fetchone(self) -> tuple[object, ...] | None: ...

    def fetchall(self) -> list[tuple[object, ...]]: ...

    @property
    def lastrowid(self) -> int | None: ...


class Notifier(Protocol):
    """Service-manager notifications (sd_notify); a no-op outside systemd."""

    def notify(self, *fields: str) -> bool: ...

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1, or None when no watchdog is armed."""
        ...


class CryptoSelfTest(Protocol):
    """Known-answer tests of the crypto library the engines link against."""

    def library_version(self) -> str: ...

    def run(self) -> None:
        """Raise MfpsecError(SELF_TEST_FAILED) on any mismatch."""
        ...
