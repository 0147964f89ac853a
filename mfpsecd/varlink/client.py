"""A Varlink connection to the daemon: synchronous (CLI) and asyncio (panel) flavours.

Replies come back as msgspec.Raw parameters; the typed clients decode them into api types.
Error replies raise MfpsecError with the decoded ErrorCode.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgspec

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink import wire
from mfpsecd.varlink.descriptors import fd_socket_path

DEFAULT_SOCKET = "/run/mfpsecd/mfpsecd.sock"
# Replies can be larger than calls (a status with many components, an audit page).
MAX_REPLY_BYTES = 16 << 20


def _unreachable(address: str, exc: OSError) -> MfpsecError:
    return MfpsecError(
        ErrorCode.DAEMON_UNREACHABLE,
        f"cannot connect to mfpsecd at {address}: {exc.strerror or exc}",
        address=address, reason=exc.strerror or str(exc),
    )


def _reply(data: bytes | bytearray) -> wire.Reply:
    reply = wire.decode_reply(data)
    if reply.error is not None:
        raise wire.error_from_reply(reply)
    return reply


def zero(*bufs: bytearray) -> None:
    """Overwrite secrets the caller passed once they are sent (the daemon never returns any)."""
    for buf in bufs:
        buf[:] = bytes(len(buf))


class Connection:
    """Blocking client; one call at a time."""

    def __init__(self, address: str = DEFAULT_SOCKET, timeout: float = 30.0) -> None:
        self.address = address
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._sock.settimeout(timeout)
        self._buf = bytearray()
        try:
            self._sock.connect(address)
        except OSError as exc:
            self._sock.close()
            raise _unreachable(address, exc) from None

    def set_timeout(self, seconds: float | None) -> None:
        """Seconds to wait for each reply; None waits forever (a quiet stream)."""
        self.timeout = seconds if seconds is not None else 0.0
        self._sock.settimeout(seconds)

    def _recv_message(self) -> bytearray:
        while True:
            nul = self._buf.find(b"\0")
            if nul >= 0:
                msg = self._buf[:nul]
                del self._buf[: nul + 1]
                return msg
            if len(self._buf) > MAX_REPLY_BYTES:
                raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason="reply too large")
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise MfpsecError(ErrorCode.TIMEOUT, seconds=self.timeout) from None
            except OSError as exc:
                raise _unreachable(self.address, exc) from None
            if not chunk:
                raise MfpsecError(ErrorCode.DAEMON_UNREACHABLE, "the daemon closed the connection",
                                  address=self.address, reason="connection closed")
            self._buf += chunk

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise _unreachable(self.address, exc) from None

    def call(self, method: str, parameters: Any = None) -> msgspec.Raw:
        self._send(wire.encode_call(method, parameters))
        return _reply(self._recv_message()).parameters

    def pass_descriptor(self, fd: int) -> str:
        """Hand fd to the daemon on the side channel; → the one-time token naming it."""
        path = fd_socket_path(Path(self.address))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(self.timeout or None)
            try:
                sock.connect(str(path))
                socket.send_fds(sock, [b"F"], [fd])
                reply = sock.makefile("rb").readline().decode(errors="replace").strip()
            except OSError as exc:
                raise MfpsecError(ErrorCode.DAEMON_UNREACHABLE,
                                  f"cannot pass a descriptor to mfpsecd at {path}: {exc}",
                                  address=str(path), reason=str(exc)) from None
        if not reply or reply.startswith("!"):
            raise MfpsecError(ErrorCode.INVALID_PARAMETER,
                              f"the daemon refused the descriptor: {reply[1:] or 'no answer'}",
                              parameter="descriptor")
        return reply

    def call_secret(self, method: str, parameters: dict[str, object], *secrets: bytearray
                    ) -> msgspec.Raw:
        """A call that carries secrets: they are zeroed once sent, whatever happens (the
        daemon never sends any back)."""
        try:
            return self.call(method, parameters)
        finally:
            zero(*secrets)

    def call_more(self, method: str, parameters: Any = None) -> Iterator[msgspec.Raw]:
        self._send(wire.encode_call(method, parameters, more=True))
        while True:
            reply = _reply(self._recv_message())
            yield reply.parameters
            if not reply.continues:
                return

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncConnection:
    """asyncio client; calls on one connection are serialised by a lock."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 address: str, timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self.address = address
        self.timeout = timeout

    @classmethod
    async def open(cls, address: str = DEFAULT_SOCKET, timeout: float = 30.0) -> AsyncConnection:
        try:
            reader, writer = await asyncio.open_unix_connection(address, limit=MAX_REPLY_BYTES)
        except OSError as exc:
            raise _unreachable(address, exc) from None
        return cls(reader, writer, address, timeout)

    async def _recv(self) -> wire.Reply:
        try:
            data = await asyncio.wait_for(self._reader.readuntil(b"\0"), self.timeout)
        except TimeoutError:
            raise MfpsecError(ErrorCode.TIMEOUT, seconds=self.timeout) from None
        except asyncio.IncompleteReadError:
            raise MfpsecError(ErrorCode.DAEMON_UNREACHABLE, "the daemon closed the connection",
                              address=self.address, reason="connection closed") from None
        except asyncio.LimitOverrunError:
            raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason="reply too large") from None
        return _reply(data[:-1])

    async def call(self, method: str, parameters: Any = None) -> msgspec.Raw:
        async with self._lock:
            self._writer.write(wire.encode_call(method, parameters))
            await self._writer.drain()
            return (await self._recv()).parameters

    async def call_more(self, method: str, parameters: Any = None) -> AsyncIterator[msgspec.Raw]:
        async with self._lock:
            self._writer.write(wire.encode_call(method, parameters, more=True))
            await self._writer.drain()
            while True:
                reply = await self._recv()
                yield reply.parameters
                if not reply.continues:
                    return

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
