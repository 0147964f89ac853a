"""The product as an integrator installs it: the built wheel in a fresh venv that holds
only what pyproject.toml's runtime dependencies pull in, with the optional parts' extras;
and a wheel built with the optional parts off (meson options), installed without them.

The dependencies come from build/wheels (made by `make setup` from constraints.txt), with
no index, so the test is offline and an undeclared runtime import fails here rather than
on a device. The checkout is kept off sys.path throughout (isolated mode, entry points).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mfpsecd.base.errors import EX_UNAVAILABLE
from mfpsecd.system.report_document import (
    FORMAT,
    SIGNATURE_ALG,
    HcdAttributes,
    ReportBody,
    ReportDevice,
    ReportDocument,
    ReportSignature,
    encode_document,
)
from tests.support import daemon as ds
from tools import requirements as declared
from tools.device_install import WHEELS, build_wheel, runtime_venv

ROOT = ds.ROOT

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Install:
    venv: Path
    work: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        # Outside the checkout, without the developer's PYTHONPATH.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        return subprocess.run(
            argv, capture_output=True, text=True, cwd=self.work, env=env, timeout=120, check=False
        )


def _names(requirements: list[str]) -> set[str]:
    import re

    return {
        re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


def _pyproject() -> dict[str, object]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    if not WHEELS.is_dir():
        pytest.skip("build/wheels is missing: run `make setup`")
    work = tmp_path_factory.mktemp("wheel-install")
    # The project's wheel, built as a package builder would (meson-python, C extension).
    wheel = build_wheel(work / "dist", work / "build")
    venv = work / "venv"
    runtime_venv(wheel, venv)
    yield Install(venv, work)


def test_installs_the_runtime_dependencies_and_nothing_of_the_dev_extra(installed: Install) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", installed.bin("python"), "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    present = {p["name"].lower().replace("_", "-") for p in json.loads(out.stdout)}
    data = _pyproject()
    runtime = _names(declared.requirements(data, build=False, extras=[]))
    dev_only = _names(declared.requirements(data, build=False, extras=["dev"])) - runtime
    assert runtime <= present, f"runtime dependencies not installed: {runtime - present}"
    assert "mfpsecd" in present
    assert not dev_only & present, f"dev-only packages pulled in: {dev_only & present}"


def _checkout_modules() -> set[str]:
    names = {"mfpsecd._native", "mfpsecd._parts"}  # compiled; written by meson
    for path in (ROOT / "mfpsecd").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.add(".".join(parts))
    return names - {"mfpsecd"}


def test_every_module_of_the_package_imports(installed: Install) -> None:
    script = (
        "import importlib, json, pkgutil, mfpsecd\n"
        "names = [m.name for m in pkgutil.walk_packages(mfpsecd.__path__, 'mfpsecd.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(json.dumps({'file': mfpsecd.__file__, 'modules': names}))\n"
    )
    out = installed.run(installed.bin("python"), "-I", "-c", script)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert Path(found["file"]).is_relative_to(installed.venv), found["file"]
    # meson lists the package's files at configure time: the wheel has every module.
    assert set(found["modules"]) == _checkout_modules()


@pytest.mark.parametrize("command", ["mfpsecd", "mfpsec"])
def test_entry_points_answer_help(installed: Install, command: str) -> None:
    out = installed.run(installed.bin(command), "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout


def test_the_installed_daemon_reaches_ready_and_its_cli_talks_to_it(
    installed: Install, short_tmp: Path
) -> None:
    with ds.running(short_tmp / "d", daemon=[installed.bin("mfpsecd")]) as d:
        status = installed.run(installed.bin("mfpsec"), "--socket", d.socket_path, "status")
        assert status.returncode == 0, status.stderr
        assert ": ready" in status.stdout
        assert "keys" in status.stdout
    assert str(installed.venv) in " ".join(d.proc.args)  # type: ignore[arg-type]


# ---------------------------------------------------------------- without the optional parts

LEFT_OUT = {
    "snmp": "mfpsecd/alerts/snmp_trap.py",
    "card_login": "mfpsecd/auth/backends/pkcs11_card.py",
    "pdf": "mfpsecd/wipe/backends/certificate_pdf.py",
}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """Built with -Dsnmp=disabled -Dcard_login=disabled -Dpdf=disabled, installed with no
    extra: what an image that uses none of them ships."""
    if not WHEELS.is_dir():
        pytest.skip("build/wheels is missing: run `make setup`")
    work = tmp_path_factory.mktemp("wheel-bare")
    wheel = build_wheel(
        work / "dist", work / "build", setup_args=[f"-D{part}=disabled" for part in LEFT_OUT]
    )
    with zipfile.ZipFile(wheel) as z:
        (work / "files.txt").write_text("\n".join(z.namelist()))
        (work / "parts.py").write_bytes(z.read("mfpsecd/_parts.py"))
    runtime_venv(wheel, work / "venv", extras=())
    yield Install(work / "venv", work)


def test_a_build_without_the_parts_leaves_their_modules_and_packages_out(bare: Install) -> None:
    files = set((bare.work / "files.txt").read_text().splitlines())
    assert not {f for f in LEFT_OUT.values() if f in files}
    assert "mfpsecd/system/report_pdf.py" not in files  # the printable posture report too
    assert "mfpsecd/alerts/notifier.py" in files  # the mail channel stays
    parts = bare.run(
        bare.bin("python"), "-I", "-c", "import mfpsecd._parts as p; print(sorted(p.LEFT_OUT))"
    )
    assert parts.stdout.strip() == str(sorted(LEFT_OUT)), parts
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", bare.bin("python"), "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    present = {p["name"].lower() for p in json.loads(out.stdout)}
    assert not present & {"pysnmp", "python-pkcs11", "reportlab", "pillow"}, present
    # Everything that is installed still imports.
    script = (
        "import importlib, pkgutil, mfpsecd\n"
        "for m in pkgutil.walk_packages(mfpsecd.__path__, 'mfpsecd.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    imported = bare.run(bare.bin("python"), "-I", "-c", script)
    assert imported.returncode == 0, imported.stderr


@pytest.mark.parametrize(
    ("section", "part"),
    [
        (
            '[notify.snmp]\nhost = "192.0.2.10"\nuser = "mfp"\nengine_id = "8000000001020304"\n',
            "snmp",
        ),
        ('[auth.card]\nmodule = "/usr/lib/opensc-pkcs11.so"\n', "card_login"),
    ],
)
def test_a_configuration_using_a_left_out_part_is_refused_by_name(
    bare: Install, section: str, part: str
) -> None:
    config = bare.work / f"{part}.toml"
    config.write_text(section)
    r = bare.run(
        bare.bin("mfpsecd"),
        "check-config",
        "--config",
        str(config),
        "--board",
        str(ROOT / "hw" / "sim.toml"),
    )
    assert r.returncode == 78, r  # EX_CONFIG
    assert "leaves out" in r.stderr and f"-D{part}=disabled" in r.stderr, r.stderr
    fine = bare.work / "none.toml"
    fine.write_text("")
    ok = bare.run(
        bare.bin("mfpsecd"),
        "check-config",
        "--config",
        str(fine),
        "--board",
        str(ROOT / "hw" / "sim.toml"),
    )
    assert ok.returncode == 0, ok


def test_a_printable_certificate_is_refused_as_part_unavailable(bare: Install) -> None:
    script = (
        "from mfpsecd.base import optional\n"
        "from mfpsecd.base.errors import MfpsecError\n"
        "try:\n"
        "    optional.require_for_call('pdf')\n"
        "except MfpsecError as e:\n"
        "    print(e.code.wire_name, e.params['reason'])\n"
    )
    r = bare.run(bare.bin("python"), "-I", "-c", script)
    assert r.stdout.startswith("io.mfpsecd.System.PartUnavailable "), r
    assert "-Dpdf=disabled" in r.stdout


def test_a_printable_posture_report_without_the_pdf_part_says_which_part(
    bare: Install,
) -> None:
    """The CLI renders the PDF itself: a build without reportlab refuses by name and still
    reads the report."""
    body = ReportBody(
        format=FORMAT,
        at="2026-12-07T00:00:00Z",
        device=ReportDevice("C300i", "S1", "sim", "ab" * 32, "2.3.0", "0.1.0"),
        level=0,
        level_text="MFPSEC:0",
        runtime_issues=[],
        checks=[],
        items=[],
        hcd=HcdAttributes("en", "C300i", 32473, True, "off", "2.3.0"),
    )
    kept = bare.work / "report.json"
    kept.write_bytes(encode_document(ReportDocument(body, ReportSignature(SIGNATURE_ALG, "", ""))))
    r = bare.run(
        bare.bin("mfpsec"),
        "--socket",
        str(bare.work / "none.sock"),
        "posture",
        "report",
        "--from",
        str(kept),
        "--pdf",
        str(bare.work / "report.pdf"),
    )
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert "PartUnavailable" in r.stderr and "-Dpdf=disabled" in r.stderr
    assert not (bare.work / "report.pdf").exists()
    shown = bare.run(
        bare.bin("mfpsec"), "--socket", "/nonexistent", "posture", "report", "--from", str(kept)
    )
    assert shown.returncode == 0 and "security level: MFPSEC:0" in shown.stdout, shown.stderr
