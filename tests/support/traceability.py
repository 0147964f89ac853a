"""Traceability from the tests themselves (issue 31): a test names the security functional
requirements (HCD cPP SFRs) and the SPEC requirements it shows,

    @pytest.mark.sfr("FIA_AFL.1")
    @pytest.mark.spec("A-4", "A-5")

and every run records the outcome of each named test; `make trace` turns the record into
docs/traceability.md. A name that docs/sfr.toml does not list stops the run at
collection: a typo never counts as evidence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools.trace import OUTCOMES, ROOT, load_catalogue


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sfr(*ids): the HCD cPP SFRs the test shows (ids from docs/sfr.toml)"
    )
    config.addinivalue_line(
        "markers", "spec(*ids): the SPEC requirements the test shows (e.g. A-4)"
    )
    config.pluginmanager.register(_Recorder(config), "mfpsecd-traceability")


class _Recorder:
    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._marks: dict[str, tuple[list[str], list[str]]] = {}
        self._outcomes: dict[str, str] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        catalogue = load_catalogue()
        unknown: list[str] = []
        for item in items:
            sfrs = [str(i) for m in item.iter_markers("sfr") for i in m.args]
            specs = [str(i) for m in item.iter_markers("spec") for i in m.args]
            unknown += [f"{item.nodeid}: SFR {i!r}" for i in sfrs if i not in catalogue.sfrs]
            unknown += [f"{item.nodeid}: SPEC id {i!r}" for i in specs if i not in catalogue.spec]
            if sfrs or specs:
                self._marks[item.nodeid] = (sorted(set(sfrs)), sorted(set(specs)))
        if unknown:
            raise pytest.UsageError(
                "tests name requirements docs/sfr.toml does not list:\n  " + "\n  ".join(unknown)
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # The first failure of any phase (setup, call, teardown) decides; a skip is never
        # evidence.
        if report.nodeid not in self._marks:
            return
        if hasattr(report, "wasxfail"):  # expected to fail: evidence of nothing
            self._outcomes[report.nodeid] = "xfail"
        elif report.failed:
            self._outcomes[report.nodeid] = "failed"
        elif report.skipped:
            self._outcomes.setdefault(report.nodeid, "skipped")
        elif report.when == "call":
            self._outcomes.setdefault(report.nodeid, "passed")

    def _whole_suite(self) -> bool:
        option = self._config.option
        tests = (ROOT / "tests").resolve()
        narrowed = (
            getattr(option, "keyword", ""),
            getattr(option, "markexpr", ""),
            getattr(option, "lf", False),
            getattr(option, "deselect", None),
            getattr(option, "ignore", None),
            getattr(option, "ignore_glob", None),
            getattr(option, "stepwise", False),
            getattr(option, "stepwise_skip", False),
        )
        return not any(narrowed) and all(Path(a).resolve() == tests for a in self._config.args)

    def pytest_sessionfinish(self) -> None:
        if not self._marks or self._config.option.collectonly:
            return
        # A run of part of the suite must not pass for the whole: it is kept apart.
        target = Path(os.environ.get("MFPSEC_TRACE_OUT", OUTCOMES))
        if not self._whole_suite():
            target = target.with_name("outcomes-partial.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "args": [str(a) for a in self._config.args],
            "tests": {
                nodeid: {
                    "outcome": self._outcomes.get(nodeid, "not run"),
                    "sfr": sfr,
                    "spec": spec,
                }
                for nodeid, (sfr, spec) in sorted(self._marks.items())
            },
        }
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(target)
