"""Durable state as the services see it: a SQLite store whose work runs off the event
loop, one writer at a time (the SQLite implementation is base.sqlite_state)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")


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

    def executemany(self, sql: str, parameters: Iterable[tuple[object, ...]], /) -> StateCursor: ...


class StateCursor(Protocol):
    def fetchone(self) -> tuple[object, ...] | None: ...

    def fetchall(self) -> list[tuple[object, ...]]: ...

    @property
    def lastrowid(self) -> int | None: ...

    @property
    def rowcount(self) -> int: ...
