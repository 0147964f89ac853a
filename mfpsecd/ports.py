"""What services need from outside, as Protocols. Backends implement them; the daemon's
main module picks a backend per port from the board profile."""

from __future__ import annotations

from typing import Protocol, TypeVar

T = TypeVar("T")


class Notifier(Protocol):
    """Service-manager notifications (sd_notify); a no-op outside systemd."""

    def notify(self, *fields: str) -> bool: ...

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1, or None when no watchdog is armed."""
        ...


class CryptoSelfTest(Protocol):
    """Known-answer tests of the engines and the crypto library they link against."""

    def library_version(self) -> str: ...

    def names(self) -> tuple[str, ...]:
        """The tests, in the order they run."""
        ...

    def run(self, name: str) -> None:
        """Raise MfpsecError(SELF_TEST_FAILED, test=name) on a wrong answer."""
        ...
