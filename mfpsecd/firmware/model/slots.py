"""A/B firmware slots: which slot boots, and how an update moves through them.

The boot state is what a bootloader environment holds on a device (U-Boot's BOOT_ORDER
and BOOT_x_LEFT, as RAUC drives them): the committed slot, a newly written slot on trial
with the boot attempts it has left, and the last trial that failed. Every change is one
function from a state to the next state, so the service can write each one atomically
before acting on it and a power cut between two writes always leaves a state that boots
a slot that was verified.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

SLOTS = ("a", "b")


class BootState(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    active: str = "a"  # the committed slot: booted unless a trial is pending
    pending: str | None = None  # written and verified at update, not yet booted for good
    tries: int = 0  # boot attempts the pending slot has left
    failed: str | None = None  # the last slot whose trial failed...
    reason: str = ""  # ... and why


def other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


def check(state: BootState) -> BootState:
    """A state read from storage: anything inconsistent is refused (ValueError)."""
    if state.active not in SLOTS:
        raise ValueError(f"active slot {state.active!r}")
    if state.pending is not None and state.pending not in (other(state.active),):
        raise ValueError(f"pending slot {state.pending!r}")
    if state.failed is not None and state.failed not in SLOTS:
        raise ValueError(f"failed slot {state.failed!r}")
    if not 0 <= state.tries <= 16 or (state.pending is None and state.tries):
        raise ValueError(f"tries {state.tries}")
    return state


@dataclass(frozen=True)
class Choice:
    slot: str  # the slot to verify and boot
    trial: bool  # the pending slot on one of its tries
    state: BootState  # to be stored before booting it (one attempt used up)


def choose(state: BootState) -> Choice:
    """The slot to boot now. A pending slot is tried while it has attempts left (each
    attempt is spent before it is made, so a slot that hangs or resets the machine
    runs out); then the committed slot boots again and the trial is recorded as failed."""
    if state.pending is not None and state.tries > 0:
        return Choice(state.pending, True, replace_tries(state, state.tries - 1))
    if state.pending is not None:
        return Choice(state.active, False, trial_failed(state, "ran out of boot attempts"))
    return Choice(state.active, False, state)


def replace_tries(state: BootState, tries: int) -> BootState:
    return msgspec.structs.replace(state, tries=tries)


def trial_failed(state: BootState, reason: str) -> BootState:
    return msgspec.structs.replace(
        state, pending=None, tries=0, failed=state.pending, reason=reason
    )


def update_target(state: BootState) -> str:
    """The slot an update writes: never the committed one."""
    return other(state.active)


def before_write(state: BootState) -> BootState:
    """Stored before the target slot is touched: it is no longer a candidate to boot."""
    return msgspec.structs.replace(state, pending=None, tries=0)


def staged(state: BootState, slot: str, tries: int) -> BootState:
    """Stored after the target slot was written, flushed and verified."""
    if slot == state.active:
        raise ValueError("an update never writes the committed slot")
    return msgspec.structs.replace(state, pending=slot, tries=tries, failed=None, reason="")


def commit(state: BootState, slot: str) -> BootState:
    """The trial slot booted and verified: it becomes the committed slot."""
    if state.pending != slot:
        return state
    return BootState(active=slot)


def fallback(state: BootState, slot: str, reason: str) -> BootState:
    """The slot that should boot did not verify and the other one did: it becomes the
    committed slot, with the failure kept for the status."""
    return BootState(active=other(slot), failed=slot, reason=reason)
