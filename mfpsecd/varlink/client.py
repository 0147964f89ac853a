"""A Varlink connection to the daemon: synchronous (CLI) and asyncio (panel) flavours.

`call(api.START, api.StartParams(...))` sends the parameters a method declares and
returns its result type, decoded (`call_more` streams them); mypy checks both against the
declaration. A sensitive method's call is encoded into a buffer that is wiped once sent,
and the bytearrays among its parameters (passwords) are zeroed with it. Calls by name
(`call("io.mfpsecd.System.GetStatus")`) return the raw reply parameters.
Error replies raise MfpsecError with the decoded ErrorCode.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self, overload

import msgspec

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink import wire
from mfpsecd.varlink.descriptors import fd_socket_path
from mfpsecd.varlink.schema import Method, NoParams, P, R
from mfpsecd.varlink.tolerant import ReplyDecoder

DEFAULT_SOCKET = "/run/mfpsecd/mfpsecd.sock"
# Replies can be larger than calls (a status with many components, an audit page).
MAX_REPLY_BYTES = 16 << 20


def _unreachable(address: str, exc: OSError) -> MfpsecError:
    return MfpsecError(
        ErrorCode.DAEMON_UNREACHABLE,
        f"cannot connect to mfpsecd at {address}: {exc.strerror or exc}",
        address=address,
        reason=exc.strerror or str(exc),
    )


def _reply(data: bytes | bytearray) -> wire.Reply:
    reply = wire.decode_reply(data)
    if reply.error is not None:
        raise wire.error_from_reply(reply)
    return reply


def zero(*bufs: bytearray) -> None:
    """Overwrite secrets the caller passed once they are sent (the daemon never returns any).
    Plain Python: the client side runs without the native extension (a panel, another uid)."""
    for buf in bufs:
        buf[:] = bytes(len(buf))


def zero_secrets(value: object) -> None:
    """Zero every bytearray in a call's parameters (fields, nested structs, lists)."""
    if isinstance(value, bytearray):
        zero(value)
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            zero_secrets(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            zero_secrets(item)


_DECODERS: dict[type[Any], ReplyDecoder] = {}


def _decoder(result: type[Any]) -> ReplyDecoder:
    """A reply's decoder: fields a newer daemon added are dropped, not refused."""
    decoder = _DECODERS.get(result)
    if decoder is None:
        decoder = _DECODERS[result] = ReplyDecoder(result)
    return decoder


def _encoded(method: Method[Any, Any], parameters: Any, more: bool) -> bytes | bytearray:
    # Without parameters the call is sent as the bare method, the exact bytes the
    # server's fast path knows (the panel's GetStatus polling).
    if parameters is None or not method.sensitive:
        return wire.encode_call(method.qualified_name, parameters, more=more)
    buffer = bytearray()
    try:
        wire.encode_call_into(buffer, method.qualified_name, parameters, more=more)
    except BaseException:
        zero(buffer)
        zero_secrets(parameters)
        raise
    return buffer


def _sent(method: Method[Any, Any], parameters: Any, message: bytes | bytearray) -> None:
    """After a sensitive call left (or failed to): nothing of its secrets stays here."""
    if method.sensitive and parameters is not None:
        assert isinstance(message, bytearray)
        zero(message)
        zero_secrets(parameters)


def _name_and_parameters(method: Method[Any, Any] | str, parameters: Any) -> tuple[str, Any]:
    if isinstance(method, str):
        return method, parameters
    return method.qualified_name, NoParams() if parameters is None else parameters


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
                raise MfpsecError(
                    ErrorCode.DAEMON_UNREACHABLE,
                    "the daemon closed the connection",
                    address=self.address,
                    reason="connection closed",
                )
            self._buf += chunk

    def _send(self, data: bytes | bytearray) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            # The daemon may have answered and closed before the call was sent: a peer
            # it does not admit is told so at once. That answer is the error to raise.
            self._raise_pending()
            raise _unreachable(self.address, exc) from None

    def _raise_pending(self) -> None:
        try:
            self._sock.setblocking(False)
            self._buf += self._sock.recv(65536)
        except OSError:
            return
        nul = self._buf.find(b"\0")
        if nul >= 0:
            _reply(self._buf[:nul])  # raises the daemon's error

    def _send_call(self, method: Method[Any, Any] | str, parameters: Any, more: bool) -> None:
        if isinstance(method, str):
            self._send(wire.encode_call(method, parameters, more=more))
            return
        message = _encoded(method, parameters, more)
        try:
            self._send(message)
        finally:
            _sent(method, parameters, message)

    @overload
    def call(self, method: Method[P, R], parameters: P) -> R: ...
    @overload
    def call(self, method: Method[NoParams, R]) -> R: ...
    @overload
    def call(self, method: str, parameters: Any = None) -> msgspec.Raw: ...

    def call(self, method: Method[Any, Any] | str, parameters: Any = None) -> Any:
        self._send_call(method, parameters, more=False)
        raw = _reply(self._recv_message()).parameters
        return raw if isinstance(method, str) else _decoder(method.result).decode(raw)

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
                raise MfpsecError(
                    ErrorCode.DAEMON_UNREACHABLE,
                    f"cannot pass a descriptor to mfpsecd at {path}: {exc}",
                    address=str(path),
                    reason=str(exc),
                ) from None
        if not reply or reply.startswith("!"):
            raise MfpsecError(
                ErrorCode.INVALID_PARAMETER,
                f"the daemon refused the descriptor: {reply[1:] or 'no answer'}",
                parameter="descriptor",
            )
        return reply

    def call_secret(
        self, method: str, parameters: dict[str, object], *secrets: bytearray
    ) -> msgspec.Raw:
        """A call that carries secrets: they are zeroed once sent, whatever happens (the
        daemon never sends any back)."""
        try:
            return self.call(method, parameters)
        finally:
            zero(*secrets)

    @overload
    def call_more(self, method: Method[P, R], parameters: P) -> Iterator[R]: ...
    @overload
    def call_more(self, method: Method[NoParams, R]) -> Iterator[R]: ...
    @overload
    def call_more(self, method: str, parameters: Any = None) -> Iterator[msgspec.Raw]: ...

    def call_more(self, method: Method[Any, Any] | str, parameters: Any = None) -> Iterator[Any]:
        """The replies of a streaming method, until the one that does not continue."""
        self._send_call(method, parameters, more=True)
        decode = None if isinstance(method, str) else _decoder(method.result).decode
        while True:
            reply = _reply(self._recv_message())
            yield reply.parameters if decode is None else decode(reply.parameters)
            if not reply.continues:
                return

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncConnection:
    """asyncio client; calls on one connection are serialised by a lock."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        timeout: float | None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self.address = address
        self.timeout = timeout  # seconds to wait for each reply; None: as long as it takes

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
            raise MfpsecError(
                ErrorCode.DAEMON_UNREACHABLE,
                "the daemon closed the connection",
                address=self.address,
                reason="connection closed",
            ) from None
        except asyncio.LimitOverrunError:
            raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason="reply too large") from None
        return _reply(data[:-1])

    async def _send_call(self, method: Method[Any, Any] | str, parameters: Any, more: bool) -> None:
        if isinstance(method, str):
            self._writer.write(wire.encode_call(method, parameters, more=more))
            await self._writer.drain()
            return
        message = _encoded(method, parameters, more)
        try:
            # The transport copies what it cannot send at once: a sensitive call waits
            # for it to be sent before its buffer is wiped.
            self._writer.write(message)
            await self._writer.drain()
        finally:
            _sent(method, parameters, message)

    @overload
    async def call(self, method: Method[P, R], parameters: P) -> R: ...
    @overload
    async def call(self, method: Method[NoParams, R]) -> R: ...
    @overload
    async def call(self, method: str, parameters: Any = None) -> msgspec.Raw: ...

    async def call(self, method: Method[Any, Any] | str, parameters: Any = None) -> Any:
        async with self._lock:
            await self._send_call(method, parameters, more=False)
            raw = (await self._recv()).parameters
        return raw if isinstance(method, str) else _decoder(method.result).decode(raw)

    @overload
    def call_more(self, method: Method[P, R], parameters: P) -> AsyncIterator[R]: ...
    @overload
    def call_more(self, method: Method[NoParams, R]) -> AsyncIterator[R]: ...
    @overload
    def call_more(self, method: str, parameters: Any = None) -> AsyncIterator[msgspec.Raw]: ...

    async def call_more(
        self, method: Method[Any, Any] | str, parameters: Any = None
    ) -> AsyncIterator[Any]:
        decode = None if isinstance(method, str) else _decoder(method.result).decode
        async with self._lock:
            await self._send_call(method, parameters, more=True)
            while True:
                reply = await self._recv()
                yield reply.parameters if decode is None else decode(reply.parameters)
                if not reply.continues:
                    return

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
