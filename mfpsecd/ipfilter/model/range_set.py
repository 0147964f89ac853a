"""One list of the IP filter (permitted or refused ranges) as entered, with its merged
cover kept beside it: adding or removing one range finds what it touches by bisection and
says which merged elements leave the kernel's interval set and which join it, so that one
change costs the same with 100 ranges as with 100,000 (nftables interval sets refuse
overlapping elements, so the kernel holds the cover, not the ranges as entered)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from mfpsecd.base.addresses import Range, merge


@dataclass(frozen=True)
class Delta:
    """The kernel set's change: these merged elements out, those in (one transaction)."""

    gone: tuple[Range, ...] = ()
    new: tuple[Range, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.gone or self.new)


def _end_key(r: Range) -> tuple[int, int]:
    return (r.family, r.end)


def _at(family: int, value: int) -> tuple[int, int]:
    return (family, value)


class RangeSet:
    def __init__(self, ranges: Iterable[Range] = ()) -> None:
        self._entered = sorted(ranges)  # (family, start, end) order, duplicates kept once
        self._entered = [
            r for i, r in enumerate(self._entered) if not i or self._entered[i - 1] != r
        ]
        self._cover = merge(self._entered)

    def __len__(self) -> int:
        return len(self._entered)

    def __contains__(self, r: Range) -> bool:
        i = bisect.bisect_left(self._entered, r)
        return i < len(self._entered) and self._entered[i] == r

    @property
    def cover(self) -> list[Range]:
        """The merged ranges, sorted (a copy is not made: do not change it)."""
        return self._cover

    def has_family(self, family: int) -> bool:
        i = bisect.bisect_left(self._entered, (family,), key=lambda r: (r.family,))
        return i < len(self._entered) and self._entered[i].family == family

    def covers(self, family: int, address: int) -> bool:
        i = bisect.bisect_left(self._cover, _at(family, address), key=_end_key)
        return (
            i < len(self._cover)
            and self._cover[i].family == family
            and self._cover[i].start <= address
        )

    def add(self, r: Range) -> Delta:
        """r joins the list (nothing if it is there already)."""
        i = bisect.bisect_left(self._entered, r)
        if i < len(self._entered) and self._entered[i] == r:
            return Delta()
        self._entered.insert(i, r)
        # Cover elements that overlap r or touch it: their ends rise with their starts.
        lo = bisect.bisect_left(self._cover, _at(r.family, r.start - 1), key=_end_key)
        hi = lo
        while (
            hi < len(self._cover)
            and self._cover[hi].family == r.family
            and self._cover[hi].start <= r.end + 1
        ):
            hi += 1
        gone = tuple(self._cover[lo:hi])
        joined = Range(
            r.family, min([r.start, *(g.start for g in gone)]), max([r.end, *(g.end for g in gone)])
        )
        if gone == (joined,):
            return Delta()  # inside what is covered already
        self._cover[lo:hi] = [joined]
        return Delta(gone, (joined,))

    def remove(self, r: Range) -> Delta:
        """r leaves the list; ValueError if it was not entered."""
        i = bisect.bisect_left(self._entered, r)
        if i == len(self._entered) or self._entered[i] != r:
            raise ValueError(f"{r} is not in the list")
        del self._entered[i]
        k = bisect.bisect_left(self._cover, _at(r.family, r.start), key=_end_key)
        old = self._cover[k]
        # Every entered range of old's cover starts inside it (old.start is the smallest).
        first = bisect.bisect_left(
            self._entered, (r.family, old.start), key=lambda x: (x.family, x.start)
        )
        last = bisect.bisect_right(
            self._entered, (r.family, old.end), key=lambda x: (x.family, x.start)
        )
        pieces = merge(self._entered[first:last])
        self._cover[k : k + 1] = pieces
        if pieces == [old]:
            return Delta()
        return Delta((old,), tuple(pieces))
