"""The power-on self-tests (FPT_TST_EXT.1, SPEC B-2): every algorithm the daemon uses, the
DRBG's health, and the TPM's own self-test, before any key is unwrapped. The outcome is one
`self_test` audit record naming every test; a failure is final for this start (fail
closed): the caller serves status only and every security function answers SelfTestFailed.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.keys.ports import Tpm
from mfpsecd.system.model import self_tests
from mfpsecd.system.ports import CryptoSelfTest

log = structlog.get_logger("mfpsecd.self_test")

COMPONENT = "self-test"


@dataclass(frozen=True)
class SelfTestOutcome:
    passed: tuple[str, ...]
    failed: str = ""  # the first test that failed; "" when all passed
    tpm: str = ""  # what the TPM's self-test said ("" without a TPM)

    @property
    def ok(self) -> bool:
        return not self.failed


class PowerOnSelfTests:
    def __init__(
        self, engines: CryptoSelfTest, auditor: Auditor, health: HealthRegistry, clock: Clock
    ) -> None:
        self._engines = engines
        self._clock = clock
        self._auditor = auditor
        self._health = health

    def _crypto(self) -> tuple[list[str], str]:
        passed: list[str] = []
        for name in self._engines.names():
            try:
                self._engines.run(name)
            except MfpsecError:
                return passed, name
            passed.append(name)
        for name, _ in self_tests.TESTS:
            try:
                self_tests.run(name)
            except Exception:
                return passed, name
            passed.append(name)
        return passed, ""

    async def run(self, tpm: Tpm | None) -> SelfTestOutcome:
        """Run every test, stop at the first failure; audit and report the outcome.
        `tpm` is None when the TPM could not be opened (the key chain says why)."""
        started = self._clock.monotonic()
        passed, failed = self._crypto()
        tpm_said = ""
        if not failed and tpm is not None:
            try:
                tpm_said = await tpm.self_test()
            except MfpsecError as exc:
                failed = (
                    str(exc.params.get("test", ""))
                    if (exc.code is ErrorCode.SELF_TEST_FAILED)
                    else f"TPM self-test: {exc.message}"
                )
            else:
                if tpm_said:
                    passed.append("tpm")
        outcome = SelfTestOutcome(tuple(passed), failed, tpm_said)
        elapsed_ms = round((self._clock.monotonic() - started) * 1000, 1)
        await self._auditor.record(
            EventType.SELF_TEST,
            Outcome.SUCCESS if outcome.ok else Outcome.FAILURE,
            DAEMON,
            "power-on self-tests",
            tests=", ".join(passed),
            failed=failed,
            library=self._engines.library_version(),
            tpm=tpm_said or "not tested",
            duration_ms=elapsed_ms,
        )
        if outcome.ok:
            self._health.set(
                COMPONENT,
                HealthState.OK,
                f"{len(passed)} tests passed ({', '.join(passed)}); "
                f"{self._engines.library_version()}",
            )
        else:
            log.error("self_test_failed", test=failed, passed=len(passed))
            self._health.set(
                COMPONENT,
                HealthState.FAILED,
                f"{failed} failed: the daemon serves status only; restart the "
                f"controller, and call service if it fails again",
            )
        return outcome
