"""What the system capability needs from outside: the engines' known-answer tests for the
power-on self-tests, and the facts a posture report states beyond the posture items."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from mfpsecd.system.model.security_level import Hardening


class CryptoSelfTest(Protocol):
    """Known-answer tests of the engines and the crypto library they link against."""

    def library_version(self) -> str: ...

    def names(self) -> tuple[str, ...]:
        """The tests, in the order they run."""
        ...

    def run(self, name: str) -> None:
        """Raise MfpsecError(SELF_TEST_FAILED, test=name) on a wrong answer."""
        ...


@dataclass(frozen=True)
class DeviceFacts:
    """The device as a posture report names it (the composition root reads the board
    profile, the boot record and the configuration)."""

    model: str
    serial: str
    board: str
    firmware_version: str  # the version this power-on verified ("" when none)
    vendor_smi_code: int  # snmp.enterprise: the vendor's IANA enterprise number


# What the security levels need beyond the posture items, read at each report.
HardeningSource = Callable[[], Awaitable[Hardening]]
