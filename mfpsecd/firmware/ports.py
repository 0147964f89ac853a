"""What firmware verification needs from outside: a hashing engine for a whole tree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class HashedFile:
    """One file of a firmware tree as the hashing engine found it."""

    path: str
    status: str  # "ok", "mismatch", "size", "not-regular", "missing", "escapes", "symlink",
    #              "io", "skipped"
    size: int
    mode: int
    digest: bytes


class TreeHasher(Protocol):
    """SHA-256 of many files under a tree, nothing outside it, no link followed."""

    def hash(
        self, root: Path, items: Sequence[tuple[str, int, bytes | None]], *, stop_early: bool
    ) -> list[HashedFile]:
        """items: (path, expected size or -1, expected digest or None)."""
        ...
