"""Import rules: import-linter contracts, plus who may load the native extension."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.support.daemon import ROOT

NATIVE_ALLOWED = ("mfpsecd.base.secret",)


def _may_load_native(module: str) -> bool:
    """A capability's own backends/ may (wipe's overwrite engine), nothing else."""
    return module.startswith(NATIVE_ALLOWED) or ".backends." in module


def test_import_linter_contracts() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools/lint_imports.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "0 broken" in r.stdout


def test_only_backends_and_secret_load_the_native_extension() -> None:
    offenders = []
    for path in (ROOT / "mfpsecd").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "mfpsecd._native" for n in names) and not _may_load_native(module):
                offenders.append(module)
    assert offenders == []
