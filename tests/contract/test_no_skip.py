"""CI's switch against silent skips (tests/support/no_skip.py), on a throwaway suite run
by a real pytest: a skip passes on a laptop and fails with its reason under the switch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import no_skip

ROOT = Path(__file__).resolve().parents[2]

SUITE = """
import pytest

pytestmark_tool = pytest.mark.skipif(True, reason="frobnicator is not installed")

@pytestmark_tool
def test_needs_a_tool():
    pass

def test_skips_itself():
    pytest.skip("the guest kernel could not be fetched")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False

def test_runs():
    assert True
"""


def _run(tmp_path: Path, switch: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != no_skip.ENV}
    if switch is not None:
        env[no_skip.ENV] = switch
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.no_skip",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("switch", [None, "0"])
def test_without_the_switch_a_skip_is_a_skip(tmp_path: Path, switch: str | None) -> None:
    out = _run(tmp_path, switch)
    assert out.returncode == 0, out.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in out.stdout


def test_under_the_switch_every_skip_fails_with_its_reason(tmp_path: Path) -> None:
    out = _run(tmp_path, "1")
    assert out.returncode == 1, out.stdout
    # A marker's skip happens in set-up, so pytest counts it as an error.
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in out.stdout
    assert "skipped" not in out.stdout.splitlines()[-1]
    assert "frobnicator is not installed" in out.stdout
    assert "the guest kernel could not be fetched" in out.stdout
    assert f"{no_skip.ENV}=1 requires every test to run" in out.stdout
