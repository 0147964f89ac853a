"""The Yocto recipes in contrib/yocto (issue 26 item 4) cannot be built here: they are
parsed as bitbake parses assignments, and every run-time package they name must be one
that layer-packages.txt says a layer (or this directory) provides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.daemon import ROOT

YOCTO = ROOT / "contrib" / "yocto"
MAIN = YOCTO / "recipes-security" / "mfpsecd" / "mfpsecd_git.bb"
OURS = sorted((YOCTO / "recipes-devtools" / "python").glob("*.bb"))

_ASSIGN = re.compile(
    r"^(?P<var>[A-Za-z_][A-Za-z0-9_\-${}]*(?::[A-Za-z0-9_\-${}]+)*)(?:\[(?P<flag>[\w-]+)\])?"
    r'\s*(?P<op>\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*"(?P<value>[^"]*)"$'
)
_INHERIT = re.compile(r"^inherit(\s+[a-z0-9_\-]+)+$")
_FUNCTION = re.compile(r"^(?:python\s+)?[a-z_][a-z0-9_]*(?::(?:append|prepend))?\s*\(\)\s*\{$")


def _statements(recipe: Path) -> list[str]:
    """Logical lines: continuations joined, comments and blank lines dropped, a
    shell function's body kept as one statement."""
    out: list[str] = []
    pending = ""
    in_function = False
    for raw in recipe.read_text().splitlines():
        if in_function:
            out[-1] += "\n" + raw
            in_function = raw != "}"
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line.startswith("#"):
            continue
        out.append(line)
        in_function = bool(_FUNCTION.match(line))
    assert not pending and not in_function, f"{recipe.name}: unterminated statement"
    return out


def _parse(recipe: Path) -> tuple[dict[str, str], list[str]]:
    """→ (assignments as VAR or VAR[flag] → value, inherited classes)."""
    values: dict[str, str] = {}
    classes: list[str] = []
    for st in _statements(recipe):
        if _FUNCTION.match(st.splitlines()[0]):
            assert st.endswith("\n}"), st
            continue
        if _INHERIT.match(st):
            classes += st.split()[1:]
            continue
        m = _ASSIGN.match(st)
        assert m, f"{recipe.name}: not bitbake syntax: {st!r}"
        key = m["var"] + (f"[{m['flag']}]" if m["flag"] else "")
        values[key] = (values.get(key, "") + " " + m["value"]).strip()
    return values, classes


def _provided() -> set[str]:
    names = set()
    for raw in (YOCTO / "layer-packages.txt").read_text().splitlines():
        name = raw.split("#", 1)[0].strip()
        if name and not name.startswith("["):
            names.add(name)
    return names


def _runtime(values: dict[str, str]) -> set[str]:
    names: set[str] = set()
    for key, value in values.items():
        if key.startswith(("RDEPENDS", "RRECOMMENDS")):
            names |= set(value.split())
        elif key.startswith("PACKAGECONFIG["):
            fields = value.split(",")
            names |= set(fields[3].split()) if len(fields) > 3 else set()
    return {n for n in names if not n.startswith("${")}


def test_every_recipe_parses_and_names_only_packages_a_layer_provides() -> None:
    provided = _provided()
    assert OURS and MAIN.is_file()
    for recipe in [MAIN, *OURS]:
        values, _ = _parse(recipe)
        missing = _runtime(values) - provided
        assert not missing, f"{recipe.name}: {sorted(missing)} not in layer-packages.txt"


def test_the_daemon_recipe() -> None:
    values, classes = _parse(MAIN)
    assert {"python_mesonpy", "systemd", "useradd"} <= set(classes)
    assert set(values["PACKAGECONFIG"].split()) == {"card-login", "snmp", "pdf"}
    # Each turns the meson option of the same part (meson.options), both ways.
    options = (ROOT / "meson.options").read_text()
    for flag in values["PACKAGECONFIG"].split():
        option = flag.replace("-", "_")
        on, off, *_ = values[f"PACKAGECONFIG[{flag}]"].split(",")
        assert (on, off) == (f"-D{option}=enabled", f"-D{option}=disabled"), flag
        assert f"option('{option}', type: 'feature'" in options, option
    for unit in values["SYSTEMD_SERVICE:${PN}"].split():
        assert (ROOT / "systemd" / unit).is_file(), unit
    # The runtime Python dependencies of pyproject.toml, each packaged somewhere.
    runtime = _runtime(values)
    for dep in (
        "python3-msgspec",
        "python3-structlog",
        "python3-cryptography",
        "python3-tpm2-pytss",
        "python3-pyudev",
        "python3-aiosmtplib",
    ):
        assert dep in runtime, dep


def test_our_python_recipes_are_complete_and_listed() -> None:
    listed = _provided()
    for recipe in OURS:
        values, classes = _parse(recipe)
        name = recipe.name.split("_", 1)[0]
        assert name in listed, name
        assert "pypi" in classes
        assert re.fullmatch(r"[0-9a-f]{64}", values["SRC_URI[sha256sum]"]), recipe.name
        checksums = re.findall(r"md5=([0-9a-f]+)", values["LIC_FILES_CHKSUM"])
        assert checksums and all(len(c) == 32 for c in checksums), recipe.name
        assert values["LICENSE"] and values["SUMMARY"]


def test_the_parser_rejects_what_bitbake_would(tmp_path: Path) -> None:
    assert not _ASSIGN.match('RDEPENDS:${PN} = "a b')  # unbalanced quote
    assert not _ASSIGN.match("RDEPENDS:${PN} = a b")  # unquoted value
    assert _ASSIGN.match('RDEPENDS:${PN}:aarch64 += "a b"')
    broken = tmp_path / "broken.bb"
    broken.write_text('SUMMARY = "x"\nRDEPENDS:${PN} = "a \\\n')
    with pytest.raises(AssertionError, match="unterminated"):
        _parse(broken)
