"""The server side of one Varlink connection: the protocol (framing, buffers, back-pressure,
call order). Checking and running calls is the server's (server.py)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import structlog

from mfpsecd.base.admission import PeerClass, PeerCredentials, classify
from mfpsecd.base.errors import ErrorCode
from mfpsecd.base.secret import wipe
from mfpsecd.varlink import wire
from mfpsecd.varlink.calls import CallContext, PreparedCall, Seat
from mfpsecd.varlink.sockets import peer_credentials

if TYPE_CHECKING:
    from mfpsecd.varlink.server import VarlinkServer

log = structlog.get_logger("mfpsecd.ipc")

_INITIAL_BUFFER = 64 * 1024
_WRITE_HIGH_WATER = 256 * 1024


class ServerConnection(asyncio.BufferedProtocol):
    """One client: framing (NUL-terminated, size-limited), receive buffers wiped as soon as
    a message is copied out, the per-connection queue with back-pressure both ways, and
    the task that hands each call to the server's dispatch in order."""

    def __init__(self, server: VarlinkServer) -> None:
        self._server = server
        self._limits = server.limits
        self._buf = bytearray(_INITIAL_BUFFER)
        self._view = memoryview(self._buf)
        self._start = 0  # first unconsumed byte
        self._end = 0  # end of received data
        self._scan = 0  # where the next NUL search starts
        self._queue: deque[bytearray | PreparedCall] = deque()
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
        self.messages = 0  # whole messages received: none yet, and the reaper is quicker
        self.opened = server.clock.monotonic()
        self.contexts: dict[str, CallContext] = {}  # per method: the peer does not change
        self.peer = PeerCredentials(0, -1, -1)
        self.peer_class = PeerClass.UNKNOWN
        self.seat: Seat = server.access.seat(self.peer, self.peer_class)

    # ---- transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self._transport = stream = cast(asyncio.Transport, transport)
        try:
            self.peer = peer_credentials(stream.get_extra_info("socket"))
        except OSError:
            stream.abort()
            return
        self.peer_class = classify(self.peer, self._server.rules)
        if self.peer_class is PeerClass.UNKNOWN:
            # Told why, and closed at once: a peer the configuration does not admit
            # holds no connection slot, however many times it connects.
            log.info("ipc_peer_refused", uid=self.peer.uid, pid=self.peer.pid)
            self._server.refused(self.peer, "peer not admitted")
            stream.write(wire.encode_error(ErrorCode.PERMISSION_DENIED))
            stream.close()
            return
        if not self._server.admit(self):
            self._server.refused(self.peer, "connection limit reached")
            stream.abort()
            return
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
            self.messages += 1
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
            if isinstance(outcome, PreparedCall):
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
            wipe(item.msg if isinstance(item, PreparedCall) else item)
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
                msg = item.msg if isinstance(item, PreparedCall) else item
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
