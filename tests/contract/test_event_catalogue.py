"""L-1 / FAU_GEN.1: every event type in the catalogue is documented in README (generated
from the code) and recorded somewhere by the code: a type that nothing emits is a
promise to the evaluator that the product does not keep."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mfpsecd.audit.events import CATALOGUE, EventType
from tools import readme_tables

PACKAGE = Path(__file__).resolve().parents[2] / "mfpsecd"
# An audit record is made by Auditor.record / Auditor.event (or the auditor's, its
# capacity's and the auth service's own wrappers), with the type as the first argument.
_EMITTED = re.compile(
    r"(?:\.record|\.event|\._record|\._internal|\._note)\(\s*EventType\.([A-Z_]+)"
)


def test_readme_tables_are_generated_from_the_code() -> None:
    """The event catalogue, the security policy's ranges and the default alert rules."""
    assert set(CATALOGUE) == set(EventType)
    assert readme_tables.main(["--check"]) == 0


@pytest.mark.sfr("FAU_GEN.1")
@pytest.mark.spec("L-1")
def test_every_event_type_is_emitted() -> None:
    emitted = set()
    for path in PACKAGE.rglob("*.py"):
        emitted |= set(_EMITTED.findall(path.read_text()))
    never = sorted(t.name for t in EventType if t.name not in emitted)
    assert never == []
