"""The traceability tooling (issue 31): the committed SFR list holds what the HCD cPP asks
of a device of this kind, a test naming an unknown requirement stops the run, outcomes
are recorded per test, and the matrix fails an applicable SFR without a passing test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import trace

MANDATORY = {
    "FAU_GEN.1",
    "FAU_GEN.2",
    "FAU_STG_EXT.1",
    "FCS_CKM.1",
    "FCS_CKM.2",
    "FCS_CKM.4",
    "FCS_COP.1",
    "FCS_RBG_EXT.1",
    "FDP_ACC.1",
    "FDP_ACF.1",
    "FIA_AFL.1",
    "FIA_ATD.1",
    "FIA_PMG_EXT.1",
    "FIA_UAU.1",
    "FIA_UAU.7",
    "FIA_UID.1",
    "FIA_USB.1",
    "FMT_MOF.1",
    "FMT_MSA.1",
    "FMT_MSA.3",
    "FMT_MTD.1",
    "FMT_SMF.1",
    "FMT_SMR.1",
    "FPT_SKP_EXT.1",
    "FPT_STM.1",
    "FPT_TST_EXT.1",
    "FPT_TUD_EXT.1",
    "FTA_SSL.3",
    "FTP_ITC.1",
    "FTP_TRP.1",
}
CONDITIONAL = {"FDP_DSK_EXT.1", "FCS_KYC_EXT.1", "FPT_KYP_EXT.1", "FDP_RIP.1"}


def test_the_committed_list_holds_the_cpp_requirements() -> None:
    catalogue = trace.load_catalogue()
    assert catalogue.sfrs.keys() >= MANDATORY
    assert catalogue.sfrs.keys() >= CONDITIONAL
    assert {i for i, s in catalogue.sfrs.items() if s.kind == "mandatory"} == MANDATORY
    for s in catalogue.sfrs.values():
        assert s.applicable or s.why, s.id
        if s.applicable:
            assert s.spec and s.capabilities and len(s.tss) > 40, s.id
    # What belongs to the web UI and the panel is said so, not claimed.
    assert not catalogue.sfrs["FTP_TRP.1"].applicable
    assert "web UI" in catalogue.sfrs["FTP_TRP.1"].why
    assert not catalogue.sfrs["FIA_UAU.7"].applicable


def test_a_broken_list_is_refused_with_where(tmp_path: Path) -> None:
    bad = tmp_path / "sfr.toml"
    bad.write_text(
        'spec = ["A-4"]\n[[sfr]]\nid = "FIA_AFL.1"\ntitle = "t"\nclass = "mandatory"\n'
        'applicable = true\nspec = ["A-99"]\ncapabilities = ["auth"]\ntss = "' + "x" * 50 + '"\n'
    )
    with pytest.raises(trace.CatalogueError, match=r"FIA_AFL\.1: unknown SPEC ids"):
        trace.load_catalogue(bad)
    bad.write_text(
        'spec = []\n[[sfr]]\nid = "FTP_TRP.1"\ntitle = "t"\nclass = "mandatory"\n'
        "applicable = false\n"
    )
    with pytest.raises(trace.CatalogueError, match="not applicable needs a why"):
        trace.load_catalogue(bad)


def _outcomes(**tests: tuple[str, list[str]]) -> dict[str, dict[str, object]]:
    return {n: {"outcome": o, "sfr": s, "spec": []} for n, (o, s) in tests.items()}


def test_the_matrix_fails_an_applicable_sfr_without_a_passing_test() -> None:
    catalogue = trace.load_catalogue()
    applicable = [s for s in catalogue.sfrs.values() if s.applicable]
    every = {f"t{i}": ("passed", [s.id]) for i, s in enumerate(applicable)}
    rows = trace.matrix(catalogue, _outcomes(**every))
    st = "\n".join(f"**{s.id}**" for s in applicable)
    assert trace.problems(rows, st) == []
    # One of them only failed, and another only skipped: both are reported.
    every["t0"] = ("failed", [applicable[0].id])
    every["t1"] = ("skipped", [applicable[1].id])
    found = trace.problems(trace.matrix(catalogue, _outcomes(**every)), st)
    assert found == [
        f"{applicable[0].id} is applicable and no test that shows it passed",
        f"{applicable[0].id}: t0 failed",
        f"{applicable[1].id} is applicable and no test that shows it passed",
        f"{applicable[1].id}: t1 skipped",
    ]
    # One test passing does not cover another of the same SFR that failed or never ran.
    every["t0"] = ("passed", [applicable[0].id])
    every["t1"] = ("passed", [applicable[1].id])
    every["t0-again"] = ("failed", [applicable[0].id])
    every["t1-again"] = ("not run", [applicable[1].id])
    found = trace.problems(trace.matrix(catalogue, _outcomes(**every)), st)
    assert found == [
        f"{applicable[0].id}: t0-again failed",
        f"{applicable[1].id}: t1-again not run",
    ]
    assert trace.problems(rows, "") == [
        f"{s.id} is applicable and docs/security-target.md leaves it out" for s in applicable
    ]
    with pytest.raises(trace.CatalogueError, match=r"names FXX_YYY\.1"):
        trace.matrix(catalogue, _outcomes(t=("passed", ["FXX_YYY.1"])))
    text = trace.render_markdown(rows)
    assert f"{len(applicable)} of {len(applicable)} applicable SFRs" in text
    assert "| FTP_TRP.1 Trusted path | mandatory | no: " in text
    assert json.loads(trace.render_json(rows))[0]["tests"][0]["outcome"] == "passed"
    st_text = trace.with_tss(f"head\n{trace.TSS_BEGIN}\nSTALE-TSS\n{trace.TSS_END}\ntail\n", rows)
    assert (
        "STALE-TSS" not in st_text and st_text.startswith("head\n") and st_text.endswith("tail\n")
    )
    assert all(f"**{s.id}**" in st_text for s in catalogue.sfrs.values())


def _pytest(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_marked.py").write_text(body)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.support.traceability",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            "--strict-markers",
            str(tmp_path / "test_marked.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=trace.ROOT,
        env={**os.environ, "MFPSEC_TRACE_OUT": str(tmp_path / "outcomes.json")},
    )


def test_a_test_naming_an_unknown_requirement_stops_the_run(tmp_path: Path) -> None:
    r = _pytest(
        tmp_path,
        "import pytest\n\n@pytest.mark.sfr('FIA_AFL.9')\ndef test_x():\n    assert True\n",
    )
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, r.stdout + r.stderr
    assert "SFR 'FIA_AFL.9'" in r.stderr


def test_each_marked_test_s_outcome_is_recorded_apart_for_a_partial_run(tmp_path: Path) -> None:
    r = _pytest(
        tmp_path,
        "import pytest\n\n"
        "@pytest.mark.sfr('FIA_AFL.1')\n@pytest.mark.spec('A-4')\n"
        "def test_shown():\n    assert True\n\n"
        "@pytest.mark.sfr('FTA_SSL.3')\ndef test_broken():\n    assert False\n\n"
        "def test_unmarked():\n    assert True\n",
    )
    assert r.returncode == pytest.ExitCode.TESTS_FAILED, r.stdout + r.stderr
    assert not (tmp_path / "outcomes.json").exists()  # not the whole suite
    record = json.loads((tmp_path / "outcomes-partial.json").read_text())
    tests = {k.rsplit("::", 1)[1]: v for k, v in record["tests"].items()}
    assert tests == {
        "test_shown": {"outcome": "passed", "sfr": ["FIA_AFL.1"], "spec": ["A-4"]},
        "test_broken": {"outcome": "failed", "sfr": ["FTA_SSL.3"], "spec": []},
    }
