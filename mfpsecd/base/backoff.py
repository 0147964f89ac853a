"""Restart policy for supervised tasks: exponential backoff with a cap, reset after a
healthy run, and a give-up threshold for tasks that fail in a tight loop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 60.0
    # A run at least this long counts as healthy and resets the delay.
    healthy_after_s: float = 30.0
    # Consecutive quick failures after which the task is marked failed and not restarted.
    give_up_after: int = 10

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s and self.factor >= 1 and self.give_up_after > 0):
            raise ValueError("invalid backoff policy")


@dataclass
class BackoffState:
    policy: BackoffPolicy
    consecutive_failures: int = 0

    def on_exit(self, ran_for_s: float) -> float | None:
        """Record a failed run; return the delay before the next start, or None to give up."""
        if ran_for_s >= self.policy.healthy_after_s:
            self.consecutive_failures = 0
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.policy.give_up_after:
            return None
        delay = self.policy.initial_s * self.policy.factor ** (self.consecutive_failures - 1)
        return min(delay, self.policy.max_s)
