"""Read-back after a purge: where it reads, and what it accepts."""

from __future__ import annotations

import itertools

import pytest

from mfpsecd.wipe.model import purge_verify as pv
from mfpsecd.wipe.model.purge_plan import Expect

B = 4096


def test_positions_cover_the_ends_and_spread() -> None:
    size = 1000 * B
    offs = pv.positions(size, B, 0.05, seed=7)
    assert offs[0] == 0 and offs[-1] == 999 * B and offs == sorted(set(offs))
    assert 50 <= len(offs) <= 52 and all(o % B == 0 for o in offs)
    assert max(b - a for a, b in itertools.pairwise(offs)) <= 40 * B
    assert list(pv.positions(size, B, 1.0, seed=1)) == [i * B for i in range(1000)]
    assert pv.positions(B - 1, B, 0.5, seed=1) == []


def test_expectations() -> None:
    zeros, ones, data = bytes(B), b"\xff" * B, bytes(range(256)) * (B // 256)
    assert pv.check(Expect.ZEROS, [(0, zeros)]).ok
    bad = pv.check(Expect.ZEROS, [(0, zeros), (B, ones)])
    assert (bad.ok, bad.offset, bad.reason) == (False, B, "not zeros")
    assert pv.check(Expect.ERASED, [(0, zeros), (B, ones)]).ok
    mixed = zeros[:100] + ones[100:]
    assert not pv.check(Expect.ERASED, [(0, mixed)]).ok  # uniform per block, not per byte
    before = {0: pv.digest(data), B: pv.digest(zeros)}
    assert pv.check(Expect.CHANGED, [(0, ones), (B, data)], before).ok
    stale = pv.check(Expect.CHANGED, [(0, data)], before)
    assert (stale.ok, stale.reason) == (False, "still holds what it held before")
    with pytest.raises(ValueError, match="digests taken before"):
        pv.check(Expect.CHANGED, [(0, data)])
    with pytest.raises(ValueError, match="overwrite engine"):
        pv.check(Expect.ENGINE, [(0, data)])


def test_a_crypto_erase_may_be_judged_on_digest_prefixes() -> None:
    """The service keeps 8 bytes of each digest: enough to tell a block unchanged."""
    old = [(0, b"a" * 4096), (4096, b"b" * 4096)]
    before = {off: pv.digest(d)[:8] for off, d in old}
    assert not pv.check(Expect.CHANGED, old, before).ok
    assert pv.check(Expect.CHANGED, [(0, b"x" * 4096), (4096, b"y" * 4096)], before).ok
    unknown = pv.check(Expect.CHANGED, [(0, b"x" * 4096)], {0: b""})
    assert (unknown.ok, unknown.offset) == (False, 0)  # no digest: not a pass
    assert not pv.check(Expect.CHANGED, [(0, b"x" * 4096)], {}).ok


def test_blocks_blank_before_a_crypto_erase_prove_nothing() -> None:
    """Unwritten or trimmed blocks read the same after a deallocating crypto erase: they
    are left out, never failed; but a read-back that judged no block is not a pass."""
    zeros, ones, data = bytes(B), b"\xff" * B, bytes(range(256)) * (B // 256)
    before = {0: pv.digest(zeros)[:8], B: pv.digest(ones)[:8], 2 * B: pv.digest(data)[:8]}
    after = [(0, zeros), (B, ones), (2 * B, zeros)]
    f = pv.check(Expect.CHANGED, after, before)
    assert (f.ok, f.blocks, f.uniform) == (True, 1, 2)
    blank = pv.check(Expect.CHANGED, after[:2], before)
    assert (blank.ok, blank.blocks, blank.uniform) == (False, 0, 2)
    assert "cannot show that the erase changed anything" in blank.reason


def test_nothing_read_back_is_never_a_pass() -> None:
    for expect in (Expect.ZEROS, Expect.ERASED, Expect.CHANGED):
        f = pv.check(expect, [], {})
        assert (f.ok, f.blocks) == (False, 0)
