"""The security level graded from the posture (issue 30, part 4), as fwupd grades a PC's
HSI: the highest level whose checks and every lower level's pass; a "!" for what weakens
it at run time."""

from __future__ import annotations

import dataclasses

import pytest

from mfpsecd.base.posture import UNREADABLE, UNREPORTED, PostureId, PostureItem, PostureState
from mfpsecd.system.model.security_level import Hardening, checks, grade

FULL = Hardening(
    boot_verified=True,
    boot_detail="slot a, version 2.3.0",
    rewrite_locked=True,
    post_quantum_roots=1,
    keys_bound_to="PCR 7, 14",
)


def _items(**states: PostureState) -> dict[PostureId, PostureItem]:
    """Every item on, but those named (by PostureId member name, lower case)."""
    return {
        i: PostureItem(i, states.get(i.name.lower(), PostureState.ON), f"{i.value} setting")
        for i in PostureId
    }


def test_every_check_met_is_level_three() -> None:
    g = grade(_items(), FULL, [])
    assert (g.level, g.text, g.runtime_issues) == (3, "MFPSEC:3", ())
    assert [c.level for c in g.checks] == sorted(c.level for c in g.checks)
    assert {c.level for c in g.checks} == {1, 2, 3}
    ids = [c.id for c in g.checks]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("items", "hardening", "level", "failed"),
    [
        (_items(admin_password=PostureState.OFF), FULL, 0, "admin-password"),
        (_items(storage_encryption=PostureState.OFF), FULL, 0, "storage-encryption"),
        (_items(temporary_data_overwrite=PostureState.OFF), FULL, 0, "temporary-data-overwrite"),
        (_items(), dataclasses.replace(FULL, boot_verified=False), 0, "firmware-verified"),
        (_items(firmware_verification=PostureState.OFF), FULL, 1, "firmware-verification-enhanced"),
        (_items(tpm=PostureState.OFF), FULL, 1, "tpm"),
        (_items(ip_filter=PostureState.OFF), FULL, 1, "ip-filter"),
        (_items(audit_forwarding=PostureState.OFF), FULL, 1, "audit-forwarding"),
        (_items(usb_ports=PostureState.OFF), FULL, 1, "usb-ports"),
        (_items(), dataclasses.replace(FULL, keys_bound_to=""), 2, "keys-firmware-policy"),
        (_items(), dataclasses.replace(FULL, rewrite_locked=False), 2, "firmware-rewrite-lock"),
        (_items(), dataclasses.replace(FULL, post_quantum_roots=0), 2, "post-quantum-signatures"),
    ],
)
def test_one_check_failed_caps_the_level_below_its_own(
    items: dict[PostureId, PostureItem], hardening: Hardening, level: int, failed: str
) -> None:
    g = grade(items, hardening, [])
    assert g.level == level
    assert [c.id for c in g.checks if not c.met] == [failed]


def test_a_higher_level_met_does_not_lift_a_lower_one_failed() -> None:
    # Everything of levels 2 and 3 in force, but no administrator password: level 0.
    g = grade(_items(admin_password=PostureState.OFF), FULL, [])
    assert g.level == 0
    assert all(c.met for c in g.checks if c.level > 1)


def test_a_board_without_usb_ports_meets_the_usb_check_but_no_other_is_excused() -> None:
    g = grade(_items(usb_ports=PostureState.NOT_APPLICABLE), FULL, [])
    assert g.level == 3
    g = grade(_items(ip_filter=PostureState.NOT_APPLICABLE), FULL, [])
    assert g.level == 1
    g = grade(_items(audit_forwarding=PostureState.NOT_MANAGED), FULL, [])
    assert g.level == 1


def test_runtime_issues_mark_the_level_with_a_bang() -> None:
    g = grade(_items(), FULL, ["forward:siem", "usb"])
    assert (g.level, g.text) == (3, "MFPSEC:3!")
    assert g.runtime_issues == ("component forward:siem is not ok", "component usb is not ok")
    items = _items()
    items[PostureId.BACKUP_SCHEDULE] = PostureItem(
        PostureId.BACKUP_SCHEDULE, PostureState.OFF, "unknown", f"{UNREADABLE}: StateUnavailable"
    )
    items[PostureId.VIRUS_SCAN] = PostureItem(
        PostureId.VIRUS_SCAN, PostureState.OFF, "unknown", UNREPORTED
    )
    g = grade(items, FULL, [])
    assert g.text == "MFPSEC:3!"  # neither item is a check of a level: the level stands
    assert g.runtime_issues == (
        f"backup-schedule: {UNREADABLE}: StateUnavailable",
        f"virus-scan: {UNREPORTED}",
    )
    # A check's item that could not be read fails the check as well.
    items[PostureId.IP_FILTER] = PostureItem(
        PostureId.IP_FILTER, PostureState.OFF, "unknown", f"{UNREADABLE}: Internal"
    )
    g = grade(items, FULL, [])
    assert (g.level, g.text) == (1, "MFPSEC:1!")


def test_each_check_says_what_it_found() -> None:
    found = {c.id: c for c in checks(_items(tpm=PostureState.OFF), FULL)}
    assert found["tpm"].detail == "off; tpm setting"
    assert found["keys-firmware-policy"].detail == "bound to PCR 7, 14"
    assert found["post-quantum-signatures"].detail == "1 post-quantum root(s) in the trust store"
    bare = Hardening(False, "this boot has no verification record", False, 0, "")
    found = {c.id: c for c in checks(_items(), bare)}
    assert found["firmware-verified"].detail == "this boot has no verification record"
    assert found["firmware-rewrite-lock"].detail == "off: firmware updates are accepted"
    assert "ECDSA signatures alone" in found["post-quantum-signatures"].detail
