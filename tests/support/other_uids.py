"""What a process under another uid runs: the client side of the package, copied where
every user can read it.

The tests run clients as other uids (setpriv) to exercise SO_PEERCRED admission and the
roles. The checkout may live where those uids cannot reach (root's home is 0700 on
Debian), and so may its venv; so they run the base interpreter on a world-readable copy
of what the CLI and the client import: mfpsecd's base, varlink, api, client and cli, and click and
msgspec from the venv. No native code: the editable loader is not involved either.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PACKAGE_FILES = ("__init__.py", "py.typed")
# base/ whole: the client side needs its errors and access enums, and importing a module
# is what pulls anything heavier (secret loads the native extension: clients never do).
_SUBPACKAGES = ("base", "varlink", "client", "cli")
# Capability folders (each one with an api.py): only their client side (the import
# contracts keep it self-contained).
_CAPABILITIES = tuple(sorted(p.parent.name for p in (ROOT / "mfpsecd").glob("*/api.py")))
# The audit log format too: `mfpsec audit verify FILE` checks an exported log offline.
_CLIENT_SIDE = (
    "__init__.py",
    "api.py",
    "cli.py",
    "*_cli.py",
    "events.py",
    "log_format.py",
    "frames.py",
    # The signed posture report: `mfpsec posture report|verify` read it without the daemon.
    "report_document.py",
)
_DEPENDENCIES = ("click", "msgspec", "typing_extensions")


def python() -> str:
    """The interpreter behind the venv (the venv's own path may be out of reach)."""
    return os.path.realpath(sys.executable)


@functools.cache
def client_tree() -> Path:
    """The copy, made once per test session and removed at its end."""
    tree = Path(tempfile.mkdtemp(prefix="mfp-client-"))
    atexit.register(shutil.rmtree, tree, True)
    package = tree / "mfpsecd"
    package.mkdir()
    for name in _PACKAGE_FILES:
        shutil.copy2(ROOT / "mfpsecd" / name, package / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for sub in _SUBPACKAGES:
        shutil.copytree(ROOT / "mfpsecd" / sub, package / sub, ignore=skip)
    for capability in _CAPABILITIES:
        (package / capability).mkdir()
        for pattern in _CLIENT_SIDE:
            for source in (ROOT / "mfpsecd" / capability).glob(pattern):
                shutil.copy2(source, package / capability / source.name)
    for name in _DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, tree / name, ignore=skip)
        else:
            shutil.copy2(origin, tree / origin.name)
    for path in (tree, *tree.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tree
