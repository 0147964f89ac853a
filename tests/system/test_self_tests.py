"""FPT_TST_EXT.1: the power-on self-tests run every algorithm, audit the outcome with the
list of tests, and a wrong answer anywhere (an engine, the TPM) fails them and says which."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.backends.native_crypto import NativeCryptoSelfTest
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.system.model import self_tests
from mfpsecd.system.self_tests import PowerOnSelfTests, SelfTestOutcome
from tests.support.fakeclock import FakeClock


class _WrongAnswer(NativeCryptoSelfTest):
    """The real engines, one of which answers wrongly (a miscompiled build, say)."""

    def __init__(self, broken: str) -> None:
        self.broken = broken
        self.ran: list[str] = []

    def run(self, name: str) -> None:
        self.ran.append(name)
        if name == self.broken:
            raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test=name)
        super().run(name)


class _FailingTpm(SoftwareKeys):
    async def self_test(self) -> str:
        raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test="TPM self-test (result 0x00000101)")


async def _run(
    tmp: Path, engines: NativeCryptoSelfTest, tpm: SoftwareKeys
) -> tuple[SelfTestOutcome, dict[str, object], Outcome, HealthRegistry]:
    clock = FakeClock()
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    health = HealthRegistry(clock)
    auditor = Auditor(AuditFile(tmp / "audit", max_bytes=1 << 20), clock, health, state)
    await auditor.start()
    outcome = await PowerOnSelfTests(engines, auditor, health, clock).run(tpm)
    (record,) = await auditor.query(AuditQuery(types=frozenset({EventType.SELF_TEST}), limit=0))
    await auditor.stop()
    await state.close()
    return outcome, dict(record.details), record.outcome, health


@pytest.mark.sfr("FCS_COP.1", "FCS_RBG_EXT.1")
@pytest.mark.spec("F-1", "K-5")
def test_every_algorithm_is_tested_and_the_list_is_audited(tmp_path: Path) -> None:
    engines = NativeCryptoSelfTest()
    outcome, details, result, health = asyncio.run(_run(tmp_path, engines, SoftwareKeys(tmp_path)))
    assert outcome.ok and result is Outcome.SUCCESS
    expected = [*engines.names(), *(name for name, _ in self_tests.TESTS)]
    assert list(outcome.passed) == expected
    assert details["tests"] == ", ".join(expected)
    for algorithm in (
        "aes-256-gcm",
        "aes-256-xts",
        "ctr-drbg",
        "drbg health",
        "argon2id",
        "rsa-oaep",
        "sha-384",
        "hmac",
        "ecdsa p-256",
        "ecdsa p-384",
        "ed25519",
    ):
        assert algorithm in str(details["tests"]), algorithm
    assert details["tpm"] == "not tested"  # software keys: no chip to test
    comp = health.get("self-test")
    assert comp is not None and comp.state is HealthState.OK


@pytest.mark.sfr("FPT_TST_EXT.1")
@pytest.mark.spec("B-2")
def test_a_wrong_answer_fails_closed_and_names_the_test(tmp_path: Path) -> None:
    engines = _WrongAnswer("aes-256-xts")
    outcome, details, result, health = asyncio.run(_run(tmp_path, engines, SoftwareKeys(tmp_path)))
    assert not outcome.ok and outcome.failed == "aes-256-xts"
    assert engines.ran[-1] == "aes-256-xts"  # nothing runs after the first failure
    assert result is Outcome.FAILURE and details["failed"] == "aes-256-xts"
    comp = health.get("self-test")
    assert comp is not None and comp.state is HealthState.FAILED
    assert "aes-256-xts failed" in comp.detail


@pytest.mark.sfr("FPT_TST_EXT.1")
@pytest.mark.spec("B-2")
def test_a_tpm_that_fails_its_own_self_test_fails_them(tmp_path: Path) -> None:
    outcome, details, result, _ = asyncio.run(
        _run(tmp_path, NativeCryptoSelfTest(), _FailingTpm(tmp_path))
    )
    assert outcome.failed == "TPM self-test (result 0x00000101)"
    assert result is Outcome.FAILURE and "0x00000101" in str(details["failed"])
