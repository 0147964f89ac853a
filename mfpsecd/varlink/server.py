"""The Varlink server: AF_UNIX stream socket, peer credentials, access check, dispatch.

Order of work for each message, cheapest and safest first:
  framing (NUL, size limit) → call envelope → peer admitted? → method known? →
  privilege → only then decode the parameters the caller controls → handler → reply.
Every receive buffer region is wiped once its message has been copied out, and every
copied message is wiped after it has been handled, so secrets sent by a client (PINs,
passwords) do not linger in daemon memory beyond the handler.

Handlers are plain functions (answer at once, no I/O: GetStatus) or coroutines / async
generators. When a connection has nothing in flight, calls to plain handlers are answered
from the read callback itself; everything else goes through the connection's task. This
saves an event-loop iteration and a task wake-up per call on the hot path, which is most
of the per-call cost in CPython; replies stay in call order either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, NoReturn, Protocol, TypeVar, cast

import msgspec
import structlog

from mfpsecd.base.access import Privilege
from mfpsecd.base.admission import (
    AdmissionRules,
    PeerClass,
    PeerCredentials,
    classify,
    privileges,
)
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import COMMON_ERRORS, ErrorCode, MfpsecError
from mfpsecd.base.secret import wipe
from mfpsecd.varlink import wire
from mfpsecd.varlink.schema import Interface, Method, NoParams
from mfpsecd.varlink.sockets import bind_unix, peer_credentials

log = structlog.get_logger("mfpsecd.ipc")

_NO_PARAMS = NoParams()
_INITIAL_BUFFER = 64 * 1024
_WRITE_HIGH_WATER = 256 * 1024

T = TypeVar("T")


class Last(Generic[T]):
    """Yielded by a streaming handler for its final reply (sent without continues)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class Seat(Protocol):
    """A connection's standing: what its peer class grants without more ado, and whatever
    the access policy attaches to it (the auth capability's login session)."""

    @property
    def base(self) -> frozenset[Privilege]: ...


class Access(Protocol):
    """The access policy beyond peer classes, injected: the server knows no sessions."""

    def seat(self, peer: PeerCredentials, peer_class: PeerClass) -> Seat:
        """The standing of a newly connected peer."""
        ...

    def authorize(self, seat: Seat, needed: Privilege) -> None:
        """For a privilege the peer class does not grant: raise MfpsecError unless the
        seat may have it now."""
        ...


@dataclass(frozen=True, slots=True)
class _ClassSeat:
    base: frozenset[Privilege]


class PeerClassAccess:
    """No sessions: a connection may do what its peer class grants, and nothing more."""

    def seat(self, peer: PeerCredentials, peer_class: PeerClass) -> Seat:
        return _ClassSeat(privileges(peer_class))

    def authorize(self, seat: Seat, needed: Privilege) -> None:
        raise MfpsecError(ErrorCode.PERMISSION_DENIED)


@dataclass(frozen=True, slots=True)
class CallContext:
    peer: PeerCredentials
    peer_class: PeerClass
    method: Method[Any, Any]
    qualified_name: str
    seat: Seat  # the connection's (the auth capability's: see sessions.seat_of)


# Answers at once, without I/O or waiting: called from the read callback. It may return
# the result already encoded (msgspec.Raw) when it caches it.
SyncHandler = Callable[[CallContext, Any], msgspec.Struct | msgspec.Raw]
UnaryHandler = Callable[[CallContext, Any], Awaitable[msgspec.Struct]]
# Yields Structs (continues=true) and ends with Last(struct).
StreamHandler = Callable[[CallContext, Any], AsyncIterator[Any]]
Handler = SyncHandler | UnaryHandler | StreamHandler


def is_sync_handler(handler: Handler) -> bool:
    return not (inspect.iscoroutinefunction(handler) or inspect.isasyncgenfunction(handler))


@dataclass(slots=True)
class _Prepared:
    """A call that passed every check up to its handler, parameters decoded."""

    msg: bytearray | memoryview  # wiped after handling (the caller wipes in-place ones)
    method: Method[Any, Any]
    ctx: CallContext
    handler: Handler
    params: Any
    reply: bool
    sync: bool


# What prepare() makes of a message: a call to run, or already answered (True: keep the
# connection, False: close it after pending replies).
_Outcome = _Prepared | bool

# Everything a call needs, looked up once per call: method, handler, decoder, sync.
_Route = tuple[Method[Any, Any], Handler, msgspec.json.Decoder[Any], bool]


@dataclass(frozen=True)
class ServerLimits:
    max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES
    max_connections: int = 64
    idle_timeout_s: float = 300.0
    queue_depth: int = 16


class _Connection(asyncio.BufferedProtocol):
    def __init__(self, server: VarlinkServer) -> None:
        self._server = server
        self._limits = server.limits
        self._buf = bytearray(_INITIAL_BUFFER)
        self._view = memoryview(self._buf)
        self._start = 0  # first unconsumed byte
        self._end = 0  # end of received data
        self._scan = 0  # where the next NUL search starts
        self._queue: deque[bytearray | _Prepared] = deque()
        self._wakeup = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._eof = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.busy = False
        self.activity = 0  # messages received: the idle reaper watches it change
        self.contexts: dict[str, CallContext] = {}  # per method: the peer does not change
        self.peer = PeerCredentials(0, -1, -1)
        self.peer_class = PeerClass.UNKNOWN
        self.seat: Seat = server.access.seat(self.peer, self.peer_class)

    # ---- transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self._transport = stream = cast(asyncio.Transport, transport)
        if not self._server.admit(self):
            try:
                who: PeerCredentials | None = peer_credentials(stream.get_extra_info("socket"))
            except OSError:
                who = None
            self._server.refused(who, "connection limit reached")
            stream.abort()
            return
        try:
            self.peer = peer_credentials(stream.get_extra_info("socket"))
        except OSError:
            stream.abort()
            return
        self.peer_class = classify(self.peer, self._server.rules)
        self.seat = self._server.access.seat(self.peer, self.peer_class)
        stream.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        self._task = asyncio.get_running_loop().create_task(self._process())

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._end == len(self._buf):
            self._make_room()
        return self._view[self._end :]

    def _make_room(self) -> None:
        pending = self._end - self._start
        if self._start > 0:
            # Slide the partial message to the front; wipe what it leaves behind.
            self._buf[0:pending] = self._buf[self._start : self._end]
            wipe(memoryview(self._buf)[pending : self._end])
            self._scan -= self._start
            self._start, self._end = 0, pending
            return
        # Grow (never past the limit + room to see the NUL); wipe the old buffer.
        new = bytearray(min(len(self._buf) * 2, self._limits.max_message_bytes + 4096))
        new[0:pending] = self._buf[0:pending]
        wipe(self._buf)
        self._view.release()
        self._buf = new
        self._view = memoryview(new)  # kept: one view per buffer, sliced per read

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        self.activity += 1
        buf = self._buf
        limit = self._limits.max_message_bytes
        fast_by_len = self._server.fast
        # Nothing in flight or queued: answer straight from the receive buffer, no copy.
        inline = (
            not self._queue
            and not self._wakeup.is_set()
            and not self.busy
            and self._writable.is_set()
        )
        while True:
            nul = buf.find(b"\0", self._scan, self._end)
            if nul < 0:
                self._scan = self._end
                if self._end - self._start > limit:
                    self._too_large()
                    return
                break
            if nul - self._start > limit:
                self._too_large()
                return
            start = self._start
            self._start = self._scan = nul + 1
            if inline:
                fast = fast_by_len.get(nul - start)
                if (
                    fast is not None
                    and buf.startswith(fast[0], start)
                    and fast[1] in self.seat.base
                ):
                    self.write(fast[2]())  # a fixed public message: no wipe
                    continue
                view = self._view
                try:
                    inline = self._serve_in_place(view[start:nul])
                finally:
                    wipe(view[start : nul + 1])
                if self._transport is None or self._transport.is_closing():
                    return
            else:
                msg = buf[start:nul]
                wipe(self._view[start : nul + 1])
                self._queue.append(msg)
        if self._start == self._end:
            self._start = self._end = self._scan = 0
        if not self._queue:
            return
        if len(self._queue) >= self._limits.queue_depth and not self._reading_paused:
            assert self._transport is not None
            self._transport.pause_reading()
            self._reading_paused = True
        self._wakeup.set()

    def _serve_in_place(self, msg: memoryview) -> bool:
        """Answer one message from the read callback. → whether the next one may be too.

        The message is parsed where it was received; parameters are decoded into their
        own objects before the caller wipes that region, so a coroutine handler is queued
        for the task already decoded and needs no copy of the raw message."""
        server = self._server
        try:
            outcome = server.prepare(self, msg)
            if isinstance(outcome, _Prepared):
                if not outcome.sync:
                    outcome.msg = bytearray()  # nothing raw to keep or wipe later
                    self._queue.append(outcome)
                    return False
                keep = server.run_sync(self, outcome)
            else:
                keep = outcome
        except Exception:
            log.error("ipc_connection_crashed", uid=self.peer.uid, exc_info=True)
            keep = False
        if not keep:
            self._drop_queue()
            self.close()
            return False
        return self._writable.is_set()  # else the task waits for the client to read first

    def _drop_queue(self) -> None:
        for item in self._queue:
            wipe(item.msg if isinstance(item, _Prepared) else item)
        self._queue.clear()

    def eof_received(self) -> bool:
        self._eof = True
        self._wakeup.set()
        return True  # keep the write side open until pending replies are sent

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.forget(self)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._drop_queue()
        wipe(self._buf)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # ---- message processing

    def _too_large(self) -> None:
        log.info("ipc_message_too_large", uid=self.peer.uid, pid=self.peer.pid)
        self.write(
            wire.encode_error(
                ErrorCode.MESSAGE_TOO_LARGE, {"max_bytes": self._limits.max_message_bytes}
            )
        )
        self.close()

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def drain(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()  # flushes buffered replies first

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def _process(self) -> None:
        depth = self._limits.queue_depth
        try:
            while True:
                while not self._queue:
                    if self._eof:
                        self.close()
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                await self.drain()
                item = self._queue.popleft()
                if self._reading_paused and len(self._queue) <= depth // 2:
                    assert self._transport is not None
                    self._transport.resume_reading()
                    self._reading_paused = False
                self.busy = True
                self._idle.clear()
                msg = item.msg if isinstance(item, _Prepared) else item
                try:
                    keep = await self._server.dispatch(self, item)
                finally:
                    wipe(msg)
                    self.busy = False
                    self._idle.set()
                    self.activity += 1
                if not keep:
                    self.close()
                    return
        except asyncio.CancelledError:
            pass
        except Exception:
            # dispatch() answers every failure itself; reaching here is a daemon bug. Never
            # leave the client waiting on a connection nobody serves.
            log.error("ipc_connection_crashed", uid=self.peer.uid, exc_info=True)
            self.close()


class VarlinkServer:
    def __init__(
        self,
        handlers: Mapping[str, Handler],
        rules: AdmissionRules,
        limits: ServerLimits,
        clock: Clock,
        *,
        interfaces: Sequence[Interface],
        access: Access | None = None,
        fast: Mapping[bytes, tuple[str, Callable[[], bytes]]] | None = None,
        release_descriptor: Callable[[str, int], None] | None = None,
        on_refused: Callable[[PeerCredentials | None, str], None] | None = None,
    ) -> None:
        self.rules = rules
        # Told of every refused peer (FTP_ITC / FAU_GEN: audited as session.failure).
        self._on_refused = on_refused
        # Frees a side-channel descriptor a call named and did not take (FdChannel.release).
        self._release_descriptor = release_descriptor
        self.access: Access = PeerClassAccess() if access is None else access
        self.limits = limits
        self.clock = clock
        self._interfaces = {i.name: i for i in interfaces}
        self._methods = {f"{i.name}.{m.name}": m for i in interfaces for m in i.methods}
        # Everything a call needs, looked up once per call: method, handler, decoder, sync.
        self._routes: dict[str, _Route] = {}
        for name, handler in handlers.items():
            method = self._methods.get(name)
            if method is None:
                raise TypeError(f"a handler for {name}, which no interface declares")
            if method.streams and not inspect.isasyncgenfunction(handler):
                raise TypeError(f"{name} streams: its handler must be an async generator")
            self._routes[name] = (
                method,
                handler,
                msgspec.json.Decoder(method.params),
                is_sync_handler(handler),
            )
        # Exact call messages answered from the read callback without parsing (see
        # handlers.fast_replies), by length: (message, privilege needed, reply maker).
        self.fast: dict[int, tuple[bytes, Privilege, Callable[[], bytes]]] = {}
        for message, (name, reply) in (fast or {}).items():
            if name not in self._routes or len(message) in self.fast:
                raise TypeError(f"fast reply for {name}: not routed, or a length taken")
            self.fast[len(message)] = (message, self._methods[name].requires, reply)
        self._connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._owned_path: Path | None = None
        self._refused = 0
        self.accepting = True

    # ---- connections

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def admit(self, conn: _Connection) -> bool:
        if not self.accepting or len(self._connections) >= self.limits.max_connections:
            self._refused += 1
            if self._refused in (1, 10, 100) or self._refused % 1000 == 0:
                log.warning(
                    "ipc_connection_refused",
                    reason="limit or shutdown",
                    refused_total=self._refused,
                )
            return False
        self._connections.add(conn)
        return True

    def forget(self, conn: _Connection) -> None:
        self._connections.discard(conn)

    def refused(self, peer: PeerCredentials | None, reason: str) -> None:
        if self._on_refused is not None:
            self._on_refused(peer, reason)

    async def reap_idle(self) -> None:
        """Supervised task: close connections idle (no call in progress) beyond the limit.

        Connections count their messages instead of reading the clock for each one; a
        connection whose count has not moved, with nothing in progress, since a sweep at
        least idle_timeout ago is closed (so within one sweep period after the limit)."""
        period = min(self.limits.idle_timeout_s / 4, 30.0)
        quiet_since: dict[_Connection, tuple[int, float]] = {}
        while True:
            await self.clock.sleep(period)
            now = self.clock.monotonic()
            for conn in list(self._connections):
                seen = quiet_since.get(conn)
                if conn.busy or seen is None or seen[0] != conn.activity:
                    quiet_since[conn] = (conn.activity, now)
                elif now - seen[1] >= self.limits.idle_timeout_s:
                    log.info("ipc_idle_close", uid=conn.peer.uid, pid=conn.peer.pid)
                    conn.close()
            for gone in quiet_since.keys() - self._connections:
                del quiet_since[gone]

    # ---- dispatch

    def prepare(self, conn: _Connection, msg: bytearray | memoryview) -> _Outcome:
        """Every check before the handler, cheapest first; failures are answered here."""
        try:
            call = wire.decode_call(msg, self._methods)
        except MfpsecError as exc:
            conn.write(wire.encode_error(exc.code, exc.params))
            return False
        name = call.method
        reply = not call.oneway
        if conn.peer_class is PeerClass.UNKNOWN:
            log.info("ipc_peer_refused", uid=conn.peer.uid, pid=conn.peer.pid, method=name)
            self.refused(conn.peer, "peer not admitted")
            if reply:
                conn.write(wire.encode_error(ErrorCode.PERMISSION_DENIED))
            return False
        route = self._routes.get(name)
        try:
            if route is None:
                self._not_routed(name)
            method, handler, decoder, sync = route
            if call.upgrade:
                raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="upgrade")
            if method.requires not in conn.seat.base:
                self._authorize(conn, method.requires, name)
            if method.streams and not call.more:
                raise MfpsecError(ErrorCode.EXPECTED_MORE)
            if call.parameters is wire.NO_PARAMETERS and method.params is NoParams:
                params: Any = _NO_PARAMS  # the common case, e.g. GetStatus: nothing to decode
            else:
                params = wire.decode_params(call.parameters, decoder)
        except MfpsecError as exc:
            self._release_named(conn, name, call.parameters)
            if reply:
                conn.write(wire.encode_error(exc.code, exc.params))
            return True
        ctx = conn.contexts.get(name)
        if ctx is None:
            ctx = conn.contexts[name] = CallContext(
                conn.peer, conn.peer_class, method, name, conn.seat
            )
        return _Prepared(msg, method, ctx, handler, params, reply, sync)

    def _release_named(self, conn: _Connection, name: str, raw: msgspec.Raw) -> None:
        """A refused call releases the descriptor it named, read from its raw parameters
        (which may not have decoded)."""
        method = self._methods.get(name)
        if method is None or not method.passes_descriptor or self._release_descriptor is None:
            return
        try:
            token = msgspec.json.decode(raw).get("descriptor")
        except (msgspec.DecodeError, AttributeError, RecursionError):
            return
        if isinstance(token, str):
            self._release_descriptor(token, conn.peer.uid)

    def _ended(self, conn: _Connection, call: _Prepared) -> None:
        if call.method.passes_descriptor and self._release_descriptor is not None:
            token = getattr(call.params, "descriptor", None)
            if isinstance(token, str):
                self._release_descriptor(token, conn.peer.uid)

    def _authorize(self, conn: _Connection, needed: Privilege, name: str) -> None:
        """Beyond what the peer class grants: a live session whose role allows it."""
        try:
            self.access.authorize(conn.seat, needed)
        except MfpsecError as exc:
            log.info(
                "ipc_permission_denied",
                uid=conn.peer.uid,
                pid=conn.peer.pid,
                method=name,
                peer_class=conn.peer_class.value,
                error=exc.code.wire_name,
            )
            raise

    def _not_routed(self, name: str) -> NoReturn:
        if name in self._methods:
            raise MfpsecError(ErrorCode.METHOD_NOT_IMPLEMENTED, method=name)
        interface = name.rpartition(".")[0]
        if interface not in self._interfaces:
            raise MfpsecError(ErrorCode.INTERFACE_NOT_FOUND, interface=interface)
        raise MfpsecError(ErrorCode.METHOD_NOT_FOUND, method=name)

    def run_sync(self, conn: _Connection, call: _Prepared) -> bool:
        try:
            result = call.handler(call.ctx, call.params)
            assert isinstance(result, msgspec.Struct | msgspec.Raw)
            if call.reply:
                conn.write(wire.encode_reply(result))
        except Exception as exc:
            self._handler_failed(conn, call, exc)
        finally:
            self._ended(conn, call)
        return True

    async def dispatch(self, conn: _Connection, item: bytearray | _Prepared) -> bool:
        """Handle one message; False closes the connection (after pending replies)."""
        call = self.prepare(conn, item) if isinstance(item, bytearray) else item
        if isinstance(call, bool):
            return call
        if call.sync:
            return self.run_sync(conn, call)
        try:
            if call.method.streams:
                await self._stream(conn, call.ctx, call.handler, call.params, call.reply)
            else:
                result = await call.handler(call.ctx, call.params)  # type: ignore[misc]
                if call.reply:
                    conn.write(wire.encode_reply(result))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._handler_failed(conn, call, exc)
        finally:
            self._ended(conn, call)
        return True

    def _handler_failed(self, conn: _Connection, call: _Prepared, exc: Exception) -> None:
        """A handler's declared errors go to the client; anything else is Internal, no detail."""
        name = call.ctx.qualified_name
        if isinstance(exc, MfpsecError):
            code, params = exc.code, exc.params
            if code not in call.method.errors and code not in COMMON_ERRORS:
                log.error("ipc_undeclared_error", method=name, error=code.wire_name)
                code, params = ErrorCode.INTERNAL, {}
        else:
            log.error("ipc_handler_crashed", method=name, exc_info=exc)
            code, params = ErrorCode.INTERNAL, {}
        if call.reply:
            conn.write(wire.encode_error(code, params))

    async def _stream(
        self, conn: _Connection, ctx: CallContext, handler: Handler, params: Any, reply: bool
    ) -> None:
        agen = handler(ctx, params)
        assert isinstance(agen, AsyncIterator)
        try:
            async for item in agen:
                if isinstance(item, Last):
                    if reply:
                        conn.write(wire.encode_reply(item.value))
                    return
                if reply:
                    conn.write(wire.encode_reply(item, continues=True))
                await conn.drain()
            raise RuntimeError(f"stream of {ctx.qualified_name} ended without Last")
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

    # ---- listening socket

    async def listen(
        self, path: Path | None, group: int | None, activated: socket.socket | None = None
    ) -> str:
        """Serve on the socket systemd passed (see activated_sockets) or bind path;
        → a description."""
        loop = asyncio.get_running_loop()
        sock = activated
        how = "socket activation"
        if sock is None:
            if path is None:
                raise ValueError("no socket path and no LISTEN_FDS")
            sock = bind_unix(path, group)
            self._owned_path = path
            how = str(path)
        # backlog=SOMAXCONN: asyncio calls listen() again; keep systemd's (larger) backlog.
        self._server = await loop.create_unix_server(
            lambda: _Connection(self), sock=sock, backlog=socket.SOMAXCONN
        )
        return how

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop accepting, let calls in progress finish (streams send their final reply),
        then close every connection."""
        self.accepting = False
        if self._server is not None:
            self._server.close()
        busy = [asyncio.ensure_future(c.wait_idle()) for c in self._connections if c.busy]
        if busy:
            _, pending = await asyncio.wait(busy, timeout=grace_s)
            for f in pending:
                f.cancel()
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        if self._owned_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._owned_path.unlink()
            self._owned_path = None
