"""Follow a stream across lost connections: the panel's and the CLI's way to watch.

A daemon restarts (an update, the watchdog), a stream stays silent longer than its
keep-alive promises (a hung peer): `follow` reconnects and calls again the way the
method's declaration says it goes on (`Method.resume`: the event stream from the last
sequence number it was given, a status from scratch), waiting a little longer after each
failed attempt. The caller sees one sequence of replies; `on_lost` tells it each time
the connection was lost (to show "reconnecting"). Errors other than a lost connection
(a refused privilege, a bad parameter) end the stream as they would a call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink.client import AsyncConnection, Connection
from mfpsecd.varlink.schema import Method, P, R

# A lost connection: the daemon is away (restarting), closed it, or stayed silent.
LOST = frozenset({ErrorCode.DAEMON_UNREACHABLE, ErrorCode.TIMEOUT})
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0  # a panel shows the daemon again within seconds of its return

Lost = Callable[[MfpsecError], None]


def _resumable(method: Method[P, R]) -> Callable[[P, R | None], P]:
    if method.resume is None:
        raise ValueError(f"{method.name} cannot be resumed on a new connection")
    return method.resume


def _lost(exc: MfpsecError, on_lost: Lost | None) -> None:
    """A lost connection is told and retried; any other error ends the stream."""
    if exc.code not in LOST:
        raise exc
    if on_lost is not None:
        on_lost(exc)


def _over(
    last: R | None, until: Callable[[R], bool] | None, address: str, on_lost: Lost | None
) -> bool:
    """Whether the stream's last reply ends it; if not, the daemon ended it early (it is
    stopping) and that is told as a lost connection."""
    if last is None or until is None or until(last):
        return True
    if on_lost is not None:
        on_lost(
            MfpsecError(
                ErrorCode.DAEMON_UNREACHABLE,
                "the daemon ended the stream while stopping",
                address=address,
                reason="stream ended early",
            )
        )
    return False


class _Backoff:
    def __init__(self) -> None:
        self.delay = RETRY_FIRST_S

    def next(self) -> float:
        delay, self.delay = self.delay, min(RETRY_MAX_S, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = RETRY_FIRST_S


def follow(
    connect: str | Callable[[], Connection],
    method: Method[P, R],
    params: P,
    *,
    silence_s: float | None,
    on_lost: Lost | None = None,
    until: Callable[[R], bool] | None = None,
) -> Iterator[R]:
    """The replies of `method` until the one that does not continue, over as many
    connections as it takes. connect: the socket's path, or what opens a connection (the
    CLI's attaches its session); silence_s: longer than the stream's keep-alive, the
    time without a reply after which the connection is taken for lost (None: a stream
    without keep-alive, waited for as long as it takes); until: whether a last reply
    really ends the stream (a job's watch ends early when the daemon stops with the job
    still running: it goes on after the restart). A daemon that cannot be reached at the
    first try is an error, as for a call: only a connection once made is followed."""
    resume = _resumable(method)
    opener = connect if callable(connect) else partial(Connection, connect)
    last: R | None = None
    backoff = _Backoff()
    reached = False
    while True:
        try:
            with opener() as conn:
                reached = True
                conn.set_timeout(silence_s)
                for reply in conn.call_more(
                    method, params if last is None else resume(params, last)
                ):
                    last = reply
                    backoff.reset()
                    yield reply
                if _over(last, until, conn.address, on_lost):
                    return
        except MfpsecError as exc:
            if not reached:
                raise
            _lost(exc, on_lost)
        time.sleep(backoff.next())


async def follow_async(
    connect: str | Callable[[], Awaitable[AsyncConnection]],
    method: Method[P, R],
    params: P,
    *,
    silence_s: float | None,
    on_lost: Lost | None = None,
    until: Callable[[R], bool] | None = None,
) -> AsyncIterator[R]:
    """`follow` for asyncio (a panel's event loop): the same, without blocking it."""
    resume = _resumable(method)
    opener = connect if callable(connect) else partial(AsyncConnection.open, connect)
    last: R | None = None
    backoff = _Backoff()
    reached = False
    while True:
        try:
            async with await opener() as conn:
                reached = True
                conn.timeout = silence_s
                async for reply in conn.call_more(
                    method, params if last is None else resume(params, last)
                ):
                    last = reply
                    backoff.reset()
                    yield reply
                if _over(last, until, conn.address, on_lost):
                    return
        except MfpsecError as exc:
            if not reached:
                raise
            _lost(exc, on_lost)
        await asyncio.sleep(backoff.next())
