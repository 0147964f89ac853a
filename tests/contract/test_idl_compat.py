"""The IDL is the contract (issue 25): within a major version a change may only add
(methods, optional parameters, result fields, types, enum values, errors). The IDL of the
current major version is committed in tests/contract/idl_baseline/; what the code now
declares is held to it. A deliberate break bumps the major version and replaces the
baseline (README: versioning)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfpsecd.daemon import interfaces
from mfpsecd.varlink import idl
from mfpsecd.varlink.schema import Interface
from tests.contract.idl_compat import breaks

BASELINE = Path(__file__).parent / "idl_baseline"
OURS = [i for i in interfaces.INTERFACES if i.name.startswith("io.mfpsecd.")]


def test_every_interface_has_a_baseline() -> None:
    assert sorted(p.stem for p in BASELINE.glob("*.varlink")) == sorted(i.name for i in OURS)


@pytest.mark.parametrize("interface", OURS, ids=lambda i: i.name)
def test_the_declared_interface_only_adds_to_its_baseline(interface: Interface) -> None:
    old = (BASELINE / f"{interface.name}.varlink").read_text()
    assert breaks(old, idl.generate(interface)) == []


OLD = """interface a.b
type T (x: int, s: ?string)
type K (on, off, idle)
type R (up, down)
method M(p: T, q: int, k: ?K) -> (r: string, s: ?R)
error E (why: string)
"""


@pytest.mark.parametrize(
    ("new", "found"),
    [
        (OLD.replace("x: int, s", "x: string, s"), ["T: field x is string, was int"]),
        (OLD.replace(", q: int,", ","), ["M parameters: field q removed"]),
        (
            OLD.replace("k: ?K)", "k: ?K, z: int)"),
            ["M parameters: new input field z is required"],
        ),
        (OLD.replace("s: ?string)", "s: ?string, n: int)"), ["T: new input field n is required"]),
        (OLD.replace("(r: string, s: ?R)", "(s: ?R)"), ["M result: field r removed"]),
        (OLD.replace("(on, off, idle)", "(on, idle)"), ["K: value off removed"]),
        (OLD.replace("error E (why: string)\n", ""), ["E removed"]),
        (OLD.replace("interface a.b", "interface a.c"), ["interface renamed a.b -> a.c"]),
        (
            OLD.replace("(up, down)", "(up, down, gone)"),
            ["R: value gone added to what clients receive"],
        ),
    ],
)
def test_the_checker_finds_each_kind_of_break(new: str, found: list[str]) -> None:
    assert breaks(OLD, new) == found


def test_the_checker_accepts_additions() -> None:
    new = (
        OLD.replace("k: ?K)", "k: ?K, z: ?int)")
        .replace("s: ?R)", "s: ?R, t: int)")
        .replace("(on, off, idle)", "(on, off, idle, unknown)")
        + "method N() -> ()\nerror F ()\n"
    )
    assert breaks(OLD, new) == []
