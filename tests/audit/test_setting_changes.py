"""FMT_MTD.1: a settings change is recorded key by key, old and new, secrets hidden."""

from __future__ import annotations

import msgspec
import pytest

from mfpsecd.audit.model import setting_changes as sc
from mfpsecd.auth.api import AuthPolicy, CharClass, LockoutPolicy, PasswordPolicy


def test_nested_leaves_by_key_path_with_old_and_new() -> None:
    before = AuthPolicy()
    after = AuthPolicy(
        password=PasswordPolicy(min_length=14, required_classes=frozenset({CharClass.DIGIT})),
        lockout=LockoutPolicy(max_failures=5),
    )
    found = list(sc.changes(before, after, prefix="auth"))
    assert found == [
        ("auth.password.min_length", "12", "14"),
        ("auth.password.required_classes", "(none)", "digit"),
        ("auth.lockout.max_failures", "3", "5"),
    ]
    details = sc.as_details(found)
    assert details["changed"] == (
        "auth.password.min_length, auth.password.required_classes, auth.lockout.max_failures"
    )
    assert details["old.auth.lockout.max_failures"] == "3"
    assert sc.as_details(sc.changes(before, before)) == {"changed": ""}


class _Mail(msgspec.Struct, frozen=True):
    host: str
    password: str


@pytest.mark.sfr("FMT_MTD.1")
@pytest.mark.spec("A-10", "K-3")
def test_a_secret_is_recorded_as_changed_and_long_values_are_cut() -> None:
    found = list(
        sc.changes(
            _Mail("a", "old-pass"),
            _Mail("b", "new-pass"),
            prefix="mail",
            secrets=frozenset({"mail.password"}),
        )
    )
    assert found == [("mail.host", "a", "b"), ("mail.password", "changed", "changed")]
    assert "old-pass" not in repr(found) and "new-pass" not in repr(found)
    long = tuple(f"10.0.{i}.0/24" for i in range(100))
    text = sc.shown(long)
    assert len(text) <= sc.MAX_VALUE and text.endswith("(100 items)")
    assert sc.shown(True) == "true"
