"""Typed calls of io.mfpsecd.System and org.varlink.service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import msgspec

from mfpsecd.api.types import Status
from mfpsecd.varlink.client import AsyncConnection, Connection
from mfpsecd.varlink.service import Info

_status = msgspec.json.Decoder(Status)
_info = msgspec.json.Decoder(Info)


class SystemClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_status(self) -> Status:
        return _status.decode(self._conn.call("io.mfpsecd.System.GetStatus"))

    def watch_status(self) -> Iterator[Status]:
        for raw in self._conn.call_more("io.mfpsecd.System.WatchStatus"):
            yield _status.decode(raw)

    def get_info(self) -> Info:
        return _info.decode(self._conn.call("org.varlink.service.GetInfo"))


class AsyncSystemClient:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get_status(self) -> Status:
        return _status.decode(await self._conn.call("io.mfpsecd.System.GetStatus"))

    async def watch_status(self) -> AsyncIterator[Status]:
        async for raw in self._conn.call_more("io.mfpsecd.System.WatchStatus"):
            yield _status.decode(raw)
