"""A-2: every rule of the password policy, and its message (hypothesis for the rest)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfpsecd.auth.model.password_policy import CharClass, PasswordPolicy, Rule, violations

DEFAULT = PasswordPolicy()
STRICT = PasswordPolicy(min_length=15, required_classes=frozenset(CharClass))


def rules(pw: bytes, user: str = "jdoe", policy: PasswordPolicy = DEFAULT) -> list[Rule]:
    return [v.rule for v in violations(memoryview(bytearray(pw)), user, policy)]


@pytest.mark.sfr("FIA_PMG_EXT.1")
@pytest.mark.spec("A-2", "A-3")
def test_each_rule_and_its_message() -> None:
    assert rules(b"correct horse battery") == []
    assert rules(b"short") == [Rule.MIN_LENGTH]
    assert rules(b"x" * 129) == [Rule.MAX_LENGTH, Rule.REPEATED_CHARACTER]
    assert rules("pässwörd-lång-enough".encode()) == [Rule.ASCII_PRINTABLE]
    assert rules(b"tab\tinside-a-password") == [Rule.ASCII_PRINTABLE]
    assert rules(b"aaaaaaaaaaaaaa") == [Rule.REPEATED_CHARACTER]
    assert rules(b"my-JDoe-password") == [Rule.CONTAINS_USER_ID]
    assert rules(b"my-JDoe-password", policy=PasswordPolicy(forbid_user_id=False)) == []
    assert rules(b"alllowercaseletters", policy=STRICT) == [Rule.COMPLEXITY]
    assert rules(b"Abcdefgh1!xyzqrs", policy=STRICT) == []
    messages = {
        v.rule: v.requirement for v in violations(memoryview(bytearray(b"jdoe")), "jdoe", STRICT)
    }
    assert messages[Rule.MIN_LENGTH] == "at least 15 characters"
    assert messages[Rule.COMPLEXITY] == "also a character of each class: digit, symbol, upper"
    assert messages[Rule.CONTAINS_USER_ID] == "must not contain the user id"
    # The requirement never echoes the password.
    assert all("jdoe" not in m for r, m in messages.items() if r is not Rule.CONTAINS_USER_ID)


@pytest.mark.sfr("FIA_PMG_EXT.1")
@pytest.mark.spec("A-2", "A-3")
def test_defaults_are_the_specs() -> None:
    assert (DEFAULT.min_length, DEFAULT.temporary_days, DEFAULT.history) == (12, 7, 5)
    assert PasswordPolicy(min_length=64).min_length == 64  # at least 64 settable, >=15 too


PRINTABLE = st.text(alphabet=string.printable[:95], min_size=0, max_size=80)


@settings(max_examples=400)
@given(pw=PRINTABLE, user=st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=8))
def test_random_passwords_are_judged_by_each_rule(pw: str, user: str) -> None:
    raw = pw.encode()
    found = rules(raw, user, STRICT)
    assert (Rule.MIN_LENGTH in found) == (len(raw) < 15)
    assert Rule.ASCII_PRINTABLE not in found
    assert (Rule.REPEATED_CHARACTER in found) == (len(raw) > 1 and len(set(raw)) == 1)
    assert (Rule.CONTAINS_USER_ID in found) == (user in pw.lower())
    classes = {
        c
        for c in CharClass
        if any(
            (c is CharClass.DIGIT and ch.isdigit())
            or (c is CharClass.UPPER and ch.isupper())
            or (c is CharClass.LOWER and ch.islower())
            or (c is CharClass.SYMBOL and not ch.isalnum())
            for ch in pw
        )
    }
    assert (Rule.COMPLEXITY in found) == (classes != set(CharClass))


@given(st.binary(min_size=12, max_size=40).filter(lambda b: any(x > 0x7E or x < 0x20 for x in b)))
def test_anything_outside_printable_ascii_is_refused(raw: bytes) -> None:
    assert Rule.ASCII_PRINTABLE in rules(raw, "")
