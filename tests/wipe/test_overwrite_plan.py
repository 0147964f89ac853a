"""The overwrite plans are exactly SPEC W-1/W-2/W-3, and the choice per medium."""

from __future__ import annotations

import pytest

from mfpsecd.wipe.model.overwrite_plan import (
    DISCARD_MODES,
    FLASH_SINGLE_PASS,
    TEMPORARY_MODES,
    Medium,
    PassKind,
    ReadBack,
    discard_plan,
    temporary_plan,
)

R = "random"

# Copied from SPEC W-1 and W-2 by hand: the table the plans must match.
SPEC_DISCARD = {
    1: (["0x00"], False),
    2: ([R, R, "0x00"], False),
    3: (["0x00", "0xFF", R], True),
    4: ([R, "0x00", "0xFF"], False),
    5: (["0x00", "0xFF", "0x00", "0xFF"], False),
    6: (["0x00", "0xFF", "0x00", "0xFF", "0x00", "0xFF", R], False),
    7: (["0x00", "0xFF", "0x00", "0xFF", "0x00", "0xFF", "0xAA"], False),
    8: (["0x00", "0xFF", "0x00", "0xFF", "0x00", "0xFF", "0xAA"], True),
}
SPEC_TEMPORARY = {1: (["0x00"], False), 2: (["0x00", "0xFF", "0x61"], True)}


@pytest.mark.parametrize(
    ("table", "spec"), [(DISCARD_MODES, SPEC_DISCARD), (TEMPORARY_MODES, SPEC_TEMPORARY)]
)
def test_plans_match_the_spec(table: dict, spec: dict) -> None:  # type: ignore[type-arg]
    assert sorted(table) == sorted(spec)
    for mode, (passes, verify) in spec.items():
        plan = table[mode]
        assert [p.describe() for p in plan.passes] == passes, mode
        assert (plan.verification is ReadBack.LAST_PASS) == verify, mode


def test_hdd_runs_the_mode_and_always_reads_back() -> None:
    for mode in range(1, 9):
        choice = discard_plan(mode, Medium.HDD)
        assert choice.plan.passes == DISCARD_MODES[mode].passes
        assert choice.plan.verification is ReadBack.LAST_PASS  # W-5
        assert f"mode {mode}" in choice.reason
    assert "W-5" in discard_plan(1, Medium.HDD).reason
    assert "W-5" not in discard_plan(3, Medium.HDD).reason


@pytest.mark.parametrize("medium", [Medium.SSD, Medium.NVME, Medium.EMMC, Medium.SD])
def test_flash_gets_one_verified_zero_pass_whatever_the_mode(medium: Medium) -> None:
    for mode in range(1, 9):
        choice = discard_plan(mode, medium)
        assert choice.plan is FLASH_SINGLE_PASS
        assert [p.describe() for p in choice.plan.passes] == ["0x00"]
        assert choice.plan.verification is ReadBack.LAST_PASS
        assert "W-3" in choice.reason and medium.value in choice.reason
    assert temporary_plan(2, medium) is None  # crypto-erase is what protects flash


def test_random_passes_and_bad_modes() -> None:
    assert [p.kind for p in DISCARD_MODES[2].passes] == [
        PassKind.RANDOM,
        PassKind.RANDOM,
        PassKind.BYTE,
    ]
    assert temporary_plan(1, Medium.HDD) is TEMPORARY_MODES[1]
    for bad in (0, 9, -1):
        with pytest.raises(ValueError, match="1-8"):
            discard_plan(bad, Medium.HDD)
    with pytest.raises(ValueError, match="1-2"):
        temporary_plan(3, Medium.HDD)
    assert DISCARD_MODES[3].describe().endswith("0x00, 0xFF, random, verify")
