"""Firmware verification's part of the S-1 posture (F-2, B-1): on in enhanced security
mode, where a failed check at power-on stops the boot, and only when this boot's check
passed."""

from __future__ import annotations

from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.firmware.service import BootRecord


def firmware_verification(enhanced: bool, booted: BootRecord | None) -> PostureItem:
    setting = (
        "enhanced: verified at every power-on, a failure stops the boot"
        if enhanced
        else "normal: verified at every power-on, a failure is reported"
    )
    if booted is None:
        return _item(PostureState.OFF, setting, "this boot has no verification record")
    if booted.result != "verified":
        return _item(
            PostureState.OFF, setting, f"this boot's check failed: {booted.reason or booted.error}"
        )
    if not enhanced:
        return _item(
            PostureState.OFF,
            setting,
            "firmware that fails the check still boots: enhanced security mode stops it",
        )
    return _item(PostureState.ON, setting, f"this boot verified {booted.slot} {booted.version}")


def _item(state: PostureState, setting: str, detail: str) -> PostureItem:
    return PostureItem(PostureId.FIRMWARE_VERIFICATION, state, setting, detail)
