"""What the audit log needs from outside: durable, append-only storage of its records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mfpsecd.audit.log_format import Verdict


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
