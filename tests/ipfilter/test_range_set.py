"""The IP filter's lists kept with their merged cover: each change's delta, applied to
the previous cover the way the kernel set takes it, gives exactly the cover of the
ranges now entered (seeded random walks over both families, touching and nested ranges)."""

from __future__ import annotations

import random

import pytest

from mfpsecd.base.addresses import Range, merge, parse_range
from mfpsecd.ipfilter.model.range_set import RangeSet


@pytest.mark.parametrize("seed", range(20))
def test_deltas_keep_the_kernel_cover_exact(seed: int) -> None:
    rng = random.Random(seed)
    ranges, entered = RangeSet(), set[Range]()
    kernel: list[Range] = []
    for _ in range(200):
        if entered and rng.random() < 0.35:
            r = rng.choice(sorted(entered))
            delta = ranges.remove(r)
            entered.discard(r)
        else:
            start = rng.randrange(300)
            r = Range(rng.choice([4, 6]), start, start + rng.choice([0, 0, 1, 3, 10, 40]))
            delta = ranges.add(r)
            entered.add(r)
        assert set(delta.gone) <= set(kernel)  # only what the kernel holds is deleted
        kernel = sorted([k for k in kernel if k not in delta.gone] + list(delta.new))
        assert kernel == merge(entered) == ranges.cover
        assert len(ranges) == len(entered)
        for family in (4, 6):
            assert ranges.has_family(family) == any(e.family == family for e in entered)
            for address in range(0, 360, 7):
                assert ranges.covers(family, address) == any(
                    k.family == family and k.start <= address <= k.end for k in kernel
                )


def test_a_range_inside_another_changes_nothing_until_the_outer_one_goes() -> None:
    outer, inner = parse_range("10.0.0.0/8"), parse_range("10.1.0.0/16")
    ranges = RangeSet([outer])
    assert not ranges.add(inner)  # covered already: the kernel set stays
    assert not ranges.add(inner)  # and a second time is no second entry
    assert len(ranges) == 2
    delta = ranges.remove(outer)
    assert (delta.gone, delta.new) == ((outer,), (inner,))
    with pytest.raises(ValueError, match="not in the list"):
        ranges.remove(outer)
