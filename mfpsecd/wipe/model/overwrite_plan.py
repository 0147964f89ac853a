"""Overwrite plans as data (SPEC W-1, W-2, W-3): which passes, in which order, and what is
read back afterwards, for each temporary-data and discard mode and for flash media.

Pure data and selection: the engine (backends) writes the passes, the wipe service runs
them. A plan names its standard so the certificate can say what was applied and why.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mfpsecd.base.config.schema import MediumKind as Medium

__all__ = [
    "DISCARD_MODES",
    "FLASH_SINGLE_PASS",
    "TEMPORARY_MODES",
    "Choice",
    "Medium",
    "OverwritePlan",
    "Pass",
    "PassKind",
    "ReadBack",
    "discard_plan",
    "is_flash",
    "overwrite_defeated_by",
    "temporary_plan",
]


def is_flash(medium: Medium) -> bool:
    return medium is not Medium.HDD


class PassKind(enum.Enum):
    BYTE = "byte"
    RANDOM = "random"  # a cryptographic stream, a fresh key for every pass


@dataclass(frozen=True)
class Pass:
    kind: PassKind
    byte: int = 0  # PassKind.BYTE only

    def describe(self) -> str:
        return "random" if self.kind is PassKind.RANDOM else f"0x{self.byte:02X}"


class ReadBack(enum.Enum):
    """What is read back after the last pass. Not verifying is a named choice, never a
    default: only temporary-data mode 1 makes it (the job's file is unlinked at once)."""

    NONE = "none"
    LAST_PASS = "last-pass"  # noqa: S105 (not a password) every byte compared with the last pass


@dataclass(frozen=True)
class OverwritePlan:
    name: str
    standard: str
    passes: tuple[Pass, ...]
    verification: ReadBack

    def describe(self) -> str:
        seq = ", ".join(p.describe() for p in self.passes)
        tail = ", verify" if self.verification is ReadBack.LAST_PASS else ""
        return f"{self.standard}: {seq}{tail}"

    def with_verification(self, verification: ReadBack) -> OverwritePlan:
        return OverwritePlan(self.name, self.standard, self.passes, verification)


def _b(*values: int) -> tuple[Pass, ...]:
    return tuple(Pass(PassKind.BYTE, v) for v in values)


_R = Pass(PassKind.RANDOM)
_V = ReadBack.LAST_PASS
_N = ReadBack.NONE

TEMPORARY_MODES: dict[int, OverwritePlan] = {
    1: OverwritePlan("temporary-1", "Temporary data mode 1", _b(0x00), _N),
    2: OverwritePlan("temporary-2", "Temporary data mode 2", _b(0x00, 0xFF, 0x61), _V),
}

DISCARD_MODES: dict[int, OverwritePlan] = {
    1: OverwritePlan("mode-1", "JEITA/Russian", _b(0x00), _N),
    2: OverwritePlan("mode-2", "NSA", (_R, _R, *_b(0x00)), _N),
    3: OverwritePlan(
        "mode-3", "DoD 5220.22-M / NCSC-TG-025 / NAVSO P-5239-26", (*_b(0x00, 0xFF), _R), _V
    ),
    4: OverwritePlan("mode-4", "US Army AR380-19", (_R, *_b(0x00, 0xFF)), _N),
    5: OverwritePlan("mode-5", "former NSA", _b(0x00, 0xFF, 0x00, 0xFF), _N),
    6: OverwritePlan("mode-6", "NATO", (*_b(0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF), _R), _N),
    7: OverwritePlan("mode-7", "German VSITR", _b(0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0xAA), _N),
    8: OverwritePlan(
        "mode-8", "US Air Force AFSSI-5020", _b(0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0xAA), _V
    ),
}

# W-3: flash remaps writes (wear levelling, spare area), so multi-pass patterns add wear
# and no assurance; one 0x00 pass over every addressable sector is the Clear method.
FLASH_SINGLE_PASS = OverwritePlan("flash-1", "NIST SP 800-88 Rev. 2 Clear (flash)", _b(0x00), _V)


@dataclass(frozen=True)
class Choice:
    plan: OverwritePlan
    reason: str  # why this plan, for the certificate


def discard_plan(mode: int, medium: Medium) -> Choice:
    """The plan a sanitization job runs for discard mode 1-8 on this medium.

    W-5 forbids reporting success for data that was not verified, so every sanitization
    reads back the last pass, also for the modes whose standard does not ask for it."""
    if mode not in DISCARD_MODES:
        raise ValueError(f"discard mode {mode} is not 1-8")
    if is_flash(medium):
        return Choice(
            FLASH_SINGLE_PASS,
            f"{medium.value} is flash: mode {mode}'s HDD patterns are not applied "
            "(W-3); one 0x00 pass over all sectors, verified",
        )
    plan = DISCARD_MODES[mode]
    if plan.verification is ReadBack.NONE:
        return Choice(
            plan.with_verification(ReadBack.LAST_PASS),
            f"mode {mode} as specified, plus a read-back of the last pass (W-5)",
        )
    return Choice(plan, f"mode {mode} as specified")


# Filesystems where writing a file's bytes again does not land on the blocks that held
# them: the old data stays on the medium, whatever the passes.
_NOT_IN_PLACE = {
    "btrfs": "btrfs is copy-on-write",
    "zfs": "zfs is copy-on-write",
    "bcachefs": "bcachefs is copy-on-write",
    "f2fs": "f2fs is log-structured",
    "nilfs2": "nilfs2 is log-structured",
    "jffs2": "jffs2 is log-structured",
    "ubifs": "ubifs is log-structured",
    "overlay": "an overlay copies files up to another layer",
}


def overwrite_defeated_by(fstype: str, options: str) -> str:
    """Why an in-place overwrite of a file there does not reach the data's blocks; "" when
    it does. options: the mount's and the superblock's, comma-separated."""
    if fstype in _NOT_IN_PLACE:
        return _NOT_IN_PLACE[fstype]
    if fstype in ("ext3", "ext4") and "data=journal" in options.split(","):
        return f"{fstype} with data=journal keeps copies of the data in its journal"
    return ""


def temporary_plan(mode: int, medium: Medium) -> OverwritePlan | None:
    """The plan for a job's temporary data (W-1); None on flash, where an overwrite does
    not reach the cells that held the data and the job store relies on crypto-erase."""
    if mode not in TEMPORARY_MODES:
        raise ValueError(f"temporary-data mode {mode} is not 1-2")
    if is_flash(medium):
        return None
    return TEMPORARY_MODES[mode]
