"""What the power-on self-tests need from outside: the engines' known-answer tests."""

from __future__ import annotations

from typing import Protocol


class CryptoSelfTest(Protocol):
    """Known-answer tests of the engines and the crypto library they link against."""

    def library_version(self) -> str: ...

    def names(self) -> tuple[str, ...]:
        """The tests, in the order they run."""
        ...

    def run(self, name: str) -> None:
        """Raise MfpsecError(SELF_TEST_FAILED, test=name) on a wrong answer."""
        ...
