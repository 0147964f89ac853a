"""What the virus scan needs from outside: a scanning engine that takes a job's data as
a stream (SPEC V-1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mfpsecd.scan.model.outcome import Verdict


@dataclass(frozen=True)
class EngineInfo:
    version: str  # "ClamAV 1.4.6"
    database: str  # the signature database's version ("" for local databases only)
    database_date: float | None  # its build time (POSIX seconds); None when it says none


class ScanStream(Protocol):
    """One scan: data in chunks, then the verdict. Blocking: run in a worker thread."""

    def feed(self, chunk: bytes) -> None:
        """Pass on a chunk. Never raises: a scanner that stops taking data (its size
        limit, a broken connection) says so in finish()."""
        ...

    def finish(self) -> Verdict:
        """The verdict for everything fed (a failure when there is none)."""
        ...

    def close(self) -> None: ...


class ScanEngine(Protocol):
    def stream(self) -> ScanStream:
        """A new scan. OSError when the engine cannot be reached."""
        ...

    def info(self) -> EngineInfo:
        """The engine's and its database's versions. OSError when it cannot be reached."""
        ...
