"""The optional parts (SNMP traps, card login, the printable certificate): a checkout has
them all; what a build without them does is shown on a real wheel built with the meson
options off (tests/install/test_wheel_without_optional_parts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfpsecd.base import optional
from mfpsecd.base.config.loader import load_config
from tools import list_sources


def test_the_checkout_has_every_part() -> None:
    assert optional.left_out() == frozenset()
    for name in optional.PARTS:
        assert optional.missing(name) == "", name
        optional.require(name, key="k")
        optional.require_for_call(name)


def test_each_part_is_a_meson_option_whose_modules_exist() -> None:
    """The build's list of each part's modules and the run time's list of parts agree,
    and each module is where the build will leave it out."""
    assert set(list_sources.PART_FILES) == set(optional.PARTS)
    package = Path(__file__).resolve().parents[2] / "mfpsecd"
    for files in list_sources.PART_FILES.values():
        for name in files:
            assert (package / name).is_file(), name


PARTS_CONFIG = """
[notify.snmp]
host = "192.0.2.10"
user = "mfp"
engine_id = "8000000001020304"

[auth.card]
module = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"
"""


def test_a_configuration_using_every_part_passes_here(tmp_path: Path) -> None:
    path = tmp_path / "mfpsecd.toml"
    path.write_text(PARTS_CONFIG)
    optional.check_config(load_config(path))


def test_an_unknown_part_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        optional.missing("fax")
