"""Lockout arithmetic (A-4) on the administrator's authentication policy (its document,
with the password rules and the session idle time, is a wire type in api.auth)."""

from __future__ import annotations

from mfpsecd.auth.api import AuthPolicy, LockoutPolicy, SessionPolicy

__all__ = ["AuthPolicy", "LockoutPolicy", "SessionPolicy", "after_failure", "lock_remaining"]


def lock_remaining(locked_until: float, now: float) -> float:
    """Seconds the account stays locked (0: not locked). A lock ends at its time whatever
    the policy became since; the failure count then starts again from zero."""
    return max(locked_until - now, 0.0)


def after_failure(
    failures: int, locked_until: float, now: float, policy: LockoutPolicy
) -> tuple[int, float]:
    """(failures, locked_until) after one more failed attempt on an unlocked account."""
    if locked_until and locked_until <= now:
        failures = 0  # the previous lock ran out: a fresh count
    failures += 1
    if failures >= policy.max_failures:
        return failures, now + policy.lock_minutes * 60.0
    return failures, 0.0
