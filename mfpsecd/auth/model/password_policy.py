"""The password policy (SPEC A-2): the rules every new password is held to, each rejection
naming the rule that failed.

Pure logic on the password's bytes (a memoryview of the caller's bytearray): no str of
the password is ever made, and the one working copy (for the case-insensitive user-id
check) is zeroed before returning. Reuse of one of the last N passwords is checked by the
user service against the stored hashes; this module only says how many are kept.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from mfpsecd.auth.api import CharClass, PasswordPolicy
from mfpsecd.base.secret import wipe

__all__ = ["CharClass", "PasswordPolicy", "Rule", "Violation", "violations"]

MAX_SUPPORTED_LENGTH = 128


class Rule(enum.Enum):
    MIN_LENGTH = "min_length"
    MAX_LENGTH = "max_length"
    ASCII_PRINTABLE = "ascii_printable"
    REPEATED_CHARACTER = "repeated_character"
    COMPLEXITY = "complexity"
    CONTAINS_USER_ID = "contains_user_id"
    REUSED = "reused"  # checked against the history by the user service


@dataclass(frozen=True)
class Violation:
    rule: Rule
    requirement: str  # what the rule asks for, for the user: never echoes the password


def _class_of(b: int) -> CharClass:
    if 0x30 <= b <= 0x39:
        return CharClass.DIGIT
    if 0x41 <= b <= 0x5A:
        return CharClass.UPPER
    if 0x61 <= b <= 0x7A:
        return CharClass.LOWER
    return CharClass.SYMBOL


def printable_ascii(password: memoryview | bytes) -> bool:
    """Every byte a printable ASCII character (A-2: what a password may hold)."""
    return all(0x20 <= b <= 0x7E for b in password)


def violations(password: memoryview, user_id: str, policy: PasswordPolicy) -> list[Violation]:
    """Every rule the password breaks, in a stable order (empty: acceptable)."""
    out: list[Violation] = []
    n = len(password)
    if n < policy.min_length:
        out.append(Violation(Rule.MIN_LENGTH, f"at least {policy.min_length} characters"))
    if n > MAX_SUPPORTED_LENGTH:
        out.append(Violation(Rule.MAX_LENGTH, f"at most {MAX_SUPPORTED_LENGTH} characters"))
    printable = printable_ascii(password)
    if not printable:
        out.append(
            Violation(
                Rule.ASCII_PRINTABLE,
                "printable ASCII characters only (letters, digits, symbols, space)",
            )
        )
    if n > 1 and all(b == password[0] for b in password):
        out.append(Violation(Rule.REPEATED_CHARACTER, "not one character repeated"))
    if policy.required_classes:
        present = {_class_of(b) for b in password if 0x20 <= b <= 0x7E}
        missing = policy.required_classes - present
        if missing:
            names = ", ".join(sorted(c.value for c in missing))
            out.append(Violation(Rule.COMPLEXITY, f"also a character of each class: {names}"))
    if policy.forbid_user_id and user_id and _contains_ci(password, user_id.encode()):
        out.append(Violation(Rule.CONTAINS_USER_ID, "must not contain the user id"))
    return out


def _contains_ci(password: memoryview, needle: bytes) -> bool:
    """Case-insensitive (ASCII) containment, on a working copy that is zeroed after."""
    lowered = bytearray(password)
    try:
        for i, b in enumerate(lowered):
            if 0x41 <= b <= 0x5A:
                lowered[i] = b | 0x20
        return needle.lower() in lowered
    finally:
        wipe(lowered)


def rules_digest(policy: PasswordPolicy) -> str:
    """Names the content rules a password is checked against (length, classes, user id):
    a stored verdict holds while this is unchanged. History and expiry are not content."""
    classes = ",".join(sorted(c.value for c in policy.required_classes))
    text = f"v1 min={policy.min_length} classes={classes} user_id={int(policy.forbid_user_id)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
