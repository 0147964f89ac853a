"""Failed sessions on the daemon's channels, audited (FTP_ITC.1, FAU_GEN.1, SPEC L-1): a
TLS handshake or connection to the SIEM that failed, a mail or trap an alert could not be
handed over in, an alert that expired undelivered, a local peer the IPC socket refused.

Callers report from anywhere (the IPC read callback included) without waiting. Like flood
detections, a failure that repeats is counted, not written each time: the first of a kind
(channel, peer, reason) is recorded at once; repeats within `interval_s` of it are
summed into one record when the interval ends, with the count and the first one's time.
A SIEM down for a day costs a few hundred records, not one per reconnect.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import MfpsecError

INTERVAL_S = 300.0
MAX_KINDS = 256  # distinct (channel, peer, reason) waiting; beyond it they are pooled
_OTHER = ("other", "", "more kinds of failure than tracked")


@dataclass
class _Pending:
    count: int
    first: str  # RFC 3339 time of the first failure counted here
    subject: Subject


def describe(exc: BaseException) -> str:
    """A failed session's cause in a few words: a TLS handshake says what it refused."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS handshake: {exc.verify_message or exc.reason or 'certificate refused'}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or type(exc).__name__}"
    if isinstance(exc, MfpsecError):
        return exc.code.wire_name
    return getattr(exc, "strerror", None) or type(exc).__name__


class SessionFailures:
    def __init__(self, auditor: Auditor, clock: Clock, *, interval_s: float = INTERVAL_S) -> None:
        self._auditor = auditor
        self._clock = clock
        self._interval = interval_s
        self._pending: dict[tuple[str, str, str], _Pending] = {}
        self._last: dict[tuple[str, str, str], float] = {}  # monotonic of the last record
        self._wake = asyncio.Event()

    def report(
        self, channel: str, peer: str, reason: str, *, subject: Subject | None = None
    ) -> None:
        """channel: "siem:<name>", "mail", "snmp", "ipc"; peer: host:port or who called."""
        key = (channel, peer, reason)
        if key not in self._pending and len(self._pending) >= MAX_KINDS:
            key = _OTHER
        waiting = self._pending.get(key)
        if waiting is None:
            self._pending[key] = _Pending(
                1,
                rfc3339(self._clock, "microseconds"),
                subject or Subject(origin="daemon", address=peer),
            )
        else:
            waiting.count += 1
        self._wake.set()

    async def flush(self) -> int:
        """Record every kind that is due (never recorded, or its interval passed): how
        many records were written."""
        now = self._clock.monotonic()
        written = 0
        for key, waiting in list(self._pending.items()):
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                continue
            channel, peer, reason = key
            try:
                await self._auditor.record(
                    EventType.SESSION_FAILURE,
                    Outcome.FAILURE,
                    waiting.subject,
                    channel,
                    peer=peer,
                    reason=reason,
                    count=waiting.count,
                    first=waiting.first,
                )
            except MfpsecError:
                return written  # the log refuses (full): keep counting, try again later
            del self._pending[key]
            self._last[key] = now
            written += 1
        for key in [
            k for k, t in self._last.items() if now - t >= self._interval and k not in self._pending
        ]:
            del self._last[key]
        return written

    async def run(self) -> None:
        """Supervised task."""
        while True:
            self._wake.clear()
            await self.flush()
            due = [t + self._interval for k, t in self._last.items() if k in self._pending]
            delay = max(0.0, min(due) - self._clock.monotonic()) if due else None
            waits: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait())}
            if delay is not None:
                waits.add(asyncio.ensure_future(self._clock.sleep(delay)))
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
