"""In CI a skipped test is a failed test.

A test that needs root, systemd, QEMU, swtpm or another tool skips with its reason on a
developer's machine that lacks them. CI is set up to have all of them, so there a skip
can only mean a missing install step, and it must not pass unnoticed: with
MFPSEC_NO_SKIP=1 (set by .ci/run) every skip, whatever raised it, is reported as a
failure that keeps the skip's reason. Expected failures (xfail) are not skips.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

ENV = "MFPSEC_NO_SKIP"


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(longrepr[2])
    return str(longrepr)


def _fail(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"skipped, but {ENV}=1 requires every test to run "
        f"(a missing tool or install step?): {_reason(report)}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if enabled() and report.skipped and not hasattr(report, "wasxfail"):
        _fail(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, object, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if enabled() and report.skipped:  # pytest.skip(allow_module_level=True)
        _fail(report)
