"""The Varlink server: AF_UNIX stream socket, peer credentials, access check, dispatch
(the connection's protocol is connection.py, what handlers see calls.py).

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
import collections
import contextlib
import inspect
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import structlog

from mfpsecd.base.access import Privilege
from mfpsecd.base.admission import (
    AdmissionRules,
    PeerClass,
    PeerCredentials,
)
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import COMMON_ERRORS, ErrorCode, MfpsecError
from mfpsecd.varlink import wire
from mfpsecd.varlink.calls import (
    Access,
    CallContext,
    Handler,
    Last,
    Outcome,
    PeerClassAccess,
    PreparedCall,
    is_sync_handler,
)
from mfpsecd.varlink.connection import ServerConnection
from mfpsecd.varlink.schema import Interface, Method, NoParams
from mfpsecd.varlink.sockets import bind_unix

log = structlog.get_logger("mfpsecd.ipc")

_NO_PARAMS = NoParams()

# Everything a call needs, looked up once per call: method, handler, decoder, sync.
_Route = tuple[Method[Any, Any], Handler, msgspec.json.Decoder[Any], bool]


@dataclass(frozen=True)
class ServerLimits:
    max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES
    max_connections: int = 64
    idle_timeout_s: float = 300.0
    queue_depth: int = 16
    # Of max_connections, this many are kept for each admitted peer class (the panel,
    # root and the daemon's own uid, the maintenance group): however many connections
    # one class holds, the others still get in.
    reserved_per_class: int = 4
    # A connection that has not sent one whole message within this is closed: holding
    # connections open without a word must not take the slots.
    first_call_timeout_s: float = 10.0


_ADMITTED = (
    PeerClass.PANEL,
    PeerClass.SYSTEM,
    PeerClass.MAINTENANCE,
    PeerClass.REMOTE_AGENT,
    PeerClass.FLEET_AGENT,
)


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
        # Slots are kept for each admitted class a peer can be in here: the agents'
        # classes only when the configuration names their users.
        self._reserving = tuple(
            c
            for c in _ADMITTED
            if (c is not PeerClass.REMOTE_AGENT or rules.remote_agent_uids)
            and (c is not PeerClass.FLEET_AGENT or rules.fleet_agent_uids)
        )
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
        self._connections: set[ServerConnection] = set()
        self._by_class: collections.Counter[PeerClass] = collections.Counter()
        self._server: asyncio.Server | None = None
        self._owned_path: Path | None = None
        self._refused = 0
        self.accepting = True

    # ---- connections

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def admit(self, conn: ServerConnection) -> bool:
        """A slot for the connection: one of its class's reserved ones, else a shared one."""
        if not self.accepting or not self._slot_for(conn.peer_class):
            self._refused += 1
            if self._refused in (1, 10, 100) or self._refused % 1000 == 0:
                log.warning(
                    "ipc_connection_refused",
                    reason="limit or shutdown",
                    refused_total=self._refused,
                )
            return False
        self._connections.add(conn)
        self._by_class[conn.peer_class] += 1
        return True

    def _slot_for(self, peer_class: PeerClass) -> bool:
        limits = self.limits
        classes = len(self._reserving)
        reserved = min(limits.reserved_per_class, limits.max_connections // classes)
        if self._by_class[peer_class] < reserved:
            return True
        shared = limits.max_connections - reserved * classes
        in_shared = sum(max(n - reserved, 0) for n in self._by_class.values())
        return in_shared < shared

    def forget(self, conn: ServerConnection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self._by_class[conn.peer_class] -= 1

    def refused(self, peer: PeerCredentials | None, reason: str) -> None:
        if self._on_refused is not None:
            self._on_refused(peer, reason)

    async def reap_idle(self) -> None:
        """Supervised task: close connections idle (no call in progress) beyond the limit.

        Connections count their messages instead of reading the clock for each one; a
        connection whose count has not moved, with nothing in progress, since a sweep at
        least idle_timeout ago is closed (so within one sweep period after the limit)."""
        limits = self.limits
        period = min(limits.idle_timeout_s / 4, limits.first_call_timeout_s / 2, 30.0)
        quiet_since: dict[ServerConnection, tuple[int, float]] = {}
        while True:
            await self.clock.sleep(period)
            now = self.clock.monotonic()
            for conn in list(self._connections):
                if not conn.messages and now - conn.opened >= limits.first_call_timeout_s:
                    log.info("ipc_silent_close", uid=conn.peer.uid, pid=conn.peer.pid)
                    self.refused(conn.peer, "no call after connecting")
                    conn.close()
                    continue
                seen = quiet_since.get(conn)
                if conn.busy or seen is None or seen[0] != conn.activity:
                    quiet_since[conn] = (conn.activity, now)
                elif now - seen[1] >= self.limits.idle_timeout_s:
                    log.info("ipc_idle_close", uid=conn.peer.uid, pid=conn.peer.pid)
                    conn.close()
            for gone in quiet_since.keys() - self._connections:
                del quiet_since[gone]

    # ---- dispatch

    def prepare(self, conn: ServerConnection, msg: bytearray | memoryview) -> Outcome:
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
        return PreparedCall(msg, method, ctx, handler, params, reply, sync)

    def _release_named(self, conn: ServerConnection, name: str, raw: msgspec.Raw) -> None:
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

    def _ended(self, conn: ServerConnection, call: PreparedCall) -> None:
        if call.method.passes_descriptor and self._release_descriptor is not None:
            token = getattr(call.params, "descriptor", None)
            if isinstance(token, str):
                self._release_descriptor(token, conn.peer.uid)

    def _authorize(self, conn: ServerConnection, needed: Privilege, name: str) -> None:
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

    def run_sync(self, conn: ServerConnection, call: PreparedCall) -> bool:
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

    async def dispatch(self, conn: ServerConnection, item: bytearray | PreparedCall) -> bool:
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

    def _handler_failed(self, conn: ServerConnection, call: PreparedCall, exc: Exception) -> None:
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
        self, conn: ServerConnection, ctx: CallContext, handler: Handler, params: Any, reply: bool
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
            lambda: ServerConnection(self), sock=sock, backlog=socket.SOMAXCONN
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
