"""What services need from outside, as Protocols. Backends implement them; the daemon's
main module picks a backend per port from the board profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from mfpsecd.api.auditlog import Verdict

T = TypeVar("T")


class Notifier(Protocol):
    """Service-manager notifications (sd_notify); a no-op outside systemd."""

    def notify(self, *fields: str) -> bool: ...

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1, or None when no watchdog is armed."""
        ...


class CryptoSelfTest(Protocol):
    """Known-answer tests of the engines and the crypto library they link against."""

    def library_version(self) -> str: ...

    def names(self) -> tuple[str, ...]:
        """The tests, in the order they run."""
        ...

    def run(self, name: str) -> None:
        """Raise MfpsecError(SELF_TEST_FAILED, test=name) on a wrong answer."""
        ...


# ---------------------------------------------------------------- audit log storage


class AuditStore(Protocol):
    """Append-only, durable storage of canonical audit records."""

    async def open(self) -> tuple[list[bytes], AuditTailRepair | None]:
        """The stored records; a torn tail (power cut mid-write) is cut off and reported."""
        ...

    async def append(self, payloads: list[bytes], *, use_reserve: bool = False) -> None:
        """Durable when it returns: one flush for the whole batch (group commit).
        AUDIT_FULL when it does not fit; use_reserve: the audit function's own records."""
        ...

    def usage(self) -> AuditUsage: ...

    async def drop_oldest(self) -> tuple[int, int, int, str]:
        """Delete the oldest segment → (its first seq, its last seq, new base seq, prev)."""
        ...

    async def read_all(self) -> list[bytes]: ...

    async def verify(
        self, payloads: list[bytes] | None = None, *, first_seq: int = 1, first_prev: bytes = ...
    ) -> Verdict:
        """The chain verdict for these records, or for everything stored."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class AuditUsage:
    used_bytes: int
    max_bytes: int
    segments: int
    oldest_last_seq: int  # the oldest segment may go once everything up to this is exported
    oldest_last_time: str
    free_bytes: int  # for records other than the audit function's own


@dataclass(frozen=True)
class AuditTailRepair:
    """What opening the log cut off: a torn last write (power cut)."""

    offset: int  # where the cut was made
    bytes_cut: int
    reason: str
