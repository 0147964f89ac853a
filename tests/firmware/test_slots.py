"""The A/B boot state machine: a trial spends its attempts, commits, fallbacks, and
whatever sequence of updates, boots and power cuts happens, the slot chosen is always
one that was written completely and verified (or the committed one)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfpsecd.firmware.model import slots as fw_slots
from mfpsecd.firmware.model.slots import BootState


def test_the_factory_state_boots_a() -> None:
    c = fw_slots.choose(BootState())
    assert (c.slot, c.trial, c.state) == ("a", False, BootState())


def test_a_trial_spends_an_attempt_before_it_is_made_then_gives_up() -> None:
    s = fw_slots.staged(BootState(), "b", 2)
    c1 = fw_slots.choose(s)
    assert (c1.slot, c1.trial, c1.state.tries) == ("b", True, 1)
    c2 = fw_slots.choose(c1.state)
    assert (c2.slot, c2.trial, c2.state.tries) == ("b", True, 0)
    c3 = fw_slots.choose(c2.state)
    assert (c3.slot, c3.trial) == ("a", False)
    assert c3.state == BootState(active="a", failed="b", reason="ran out of boot attempts")


def test_commit_only_the_pending_slot() -> None:
    s = fw_slots.staged(BootState(), "b", 3)
    assert fw_slots.commit(s, "b") == BootState(active="b")
    assert fw_slots.commit(s, "a") == s
    assert fw_slots.update_target(BootState(active="b")) == "a"


def test_an_update_never_writes_the_committed_slot() -> None:
    with pytest.raises(ValueError, match="committed"):
        fw_slots.staged(BootState(active="a"), "a", 3)


@pytest.mark.parametrize(
    "bad",
    [
        BootState(active="c"),
        BootState(active="a", pending="a", tries=1),
        BootState(active="a", tries=2),
        BootState(active="a", pending="b", tries=17),
        BootState(active="a", failed="x"),
    ],
)
def test_inconsistent_stored_states_are_refused(bad: BootState) -> None:
    with pytest.raises(ValueError):
        fw_slots.check(bad)


OPS = st.lists(st.sampled_from(["update", "boot-ok", "boot-bad", "cut"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_any_history_boots_a_complete_verified_slot(ops: list[str]) -> None:
    """A model of the service: `complete` holds the slots fully written and verified.
    A power cut can land between any two stored states; stored states are what survive."""
    stored = BootState()
    complete = {"a"}  # the factory slot
    for op in ops:
        if op in ("update", "cut"):
            target = fw_slots.update_target(stored)
            stored = fw_slots.check(fw_slots.before_write(stored))
            complete.discard(target)  # being rewritten: not bootable from here on
            if op == "cut":
                continue  # the power went while the slot was half written
            complete.add(target)
            stored = fw_slots.check(fw_slots.staged(stored, target, 3))
        else:
            choice = fw_slots.choose(stored)
            stored = fw_slots.check(choice.state)
            assert choice.slot in complete
            if op == "boot-ok" and choice.trial:
                stored = fw_slots.check(fw_slots.commit(stored, choice.slot))
            elif op == "boot-bad" and choice.trial:
                stored = fw_slots.check(fw_slots.trial_failed(stored, "did not verify"))
                complete.discard(choice.slot)
        assert stored.active in complete
