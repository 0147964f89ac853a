"""io.mfpsecd.System handlers: the status the panel polls and watches, and the posture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec

from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.system import api
from mfpsecd.system.posture import PostureBook
from mfpsecd.system.status import StatusService
from mfpsecd.varlink.calls import CallContext, Last
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams

_encoder = msgspec.json.Encoder()


class StatusReply:
    """GetStatus, pre-encoded: the Status JSON is encoded once per health generation and
    only the uptime is spliced in per call (encoding the whole struct was most of the
    handler's cost on the panel's polling path). The bytes are exactly what encoding
    the Status would give; a unit test holds them to that."""

    _FIELD = b'"uptime_seconds":'

    def __init__(self, status: StatusService) -> None:
        self._status = status
        self._cached: tuple[int, bytes, bytes] | None = None

    def _parts(self) -> tuple[int, bytes, bytes]:
        generation, template = self._status.snapshot()
        cached = self._cached
        if cached is None or cached[0] != generation:
            data = _encoder.encode(template)
            at = data.index(self._FIELD + b"0.0") + len(self._FIELD)
            cached = self._cached = (generation, data[:at], data[at + 3 :])
        return cached

    def encoded(self) -> msgspec.Raw:
        _, head, tail = self._parts()
        return msgspec.Raw(head + repr(self._status.uptime()).encode() + tail)

    def message(self) -> bytes:
        """The whole reply message, NUL included (the IPC server's fast path)."""
        _, head, tail = self._parts()
        return b"".join(
            (b'{"parameters":', head, repr(self._status.uptime()).encode(), tail, b"}\0")
        )


_encoder = msgspec.json.Encoder()


# The exact bytes our clients send for GetStatus (wire.encode_call without parameters).
GET_STATUS_CALL = b'{"method":"io.mfpsecd.System.GetStatus"}'


def fast_replies(status: StatusService) -> dict[bytes, tuple[str, Callable[[], bytes]]]:
    """Calls answered from the read callback without parsing: the panel polls GetStatus,
    so its canonical message maps straight to the pre-encoded reply. The server still
    checks the method's privilege; any other spelling of the call takes the normal path.
    """
    return {GET_STATUS_CALL: ("io.mfpsecd.System.GetStatus", StatusReply(status).message)}


class SystemHandlers:
    """io.mfpsecd.System. Plain methods answer from the read callback (see the IPC
    server); only what waits for something is a coroutine or an async generator."""

    def __init__(
        self, status: StatusService, posture: PostureBook | None = None, clock: Clock | None = None
    ) -> None:
        self._status = status
        self._reply = StatusReply(status)
        self._posture = posture
        self._clock = clock

    @handles(api.GET_STATUS)
    def get_status(self, ctx: CallContext, _: NoParams) -> msgspec.Raw:
        return self._reply.encoded()

    @handles(api.WATCH_STATUS)
    async def watch_status(
        self, ctx: CallContext, _: NoParams
    ) -> AsyncIterator[api.Status | Last[api.Status]]:
        async for s in self._status.watch():
            if s.state is api.DaemonState.STOPPING:
                yield Last(s)  # the stream's proper end: the daemon is going away
                return
            yield s

    @handles(api.GET_POSTURE)
    async def get_posture(self, ctx: CallContext, _: NoParams) -> api.Posture:
        # Without its sources (a failed self-test, the IPC layer's tests) the table has no
        # GetPosture route: see daemon.handlers.
        assert self._posture is not None and self._clock is not None
        entries = await self._posture.current()
        return api.Posture(
            [
                api.PostureItem(
                    e.item.id.value,
                    e.title,
                    e.item.state,
                    e.item.setting,
                    e.item.detail,
                    e.since,
                )
                for e in entries
            ],
            rfc3339(self._clock),
        )
