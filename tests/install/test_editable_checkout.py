"""The development checkout's CLI for a caller who may not write the build tree (issue
22: any uid but the checkout's owner got a PermissionError from the editable install's
import hook, which wrote its build log into build/py on every start)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support import daemon as ds

pytestmark = pytest.mark.root


def test_the_cli_runs_when_the_build_tree_is_read_only(short_tmp: Path) -> None:
    build = ds.ROOT / "build" / "py"
    with ds.running(short_tmp / "d", tpm="none") as d:
        # A private mount namespace where build/py is read-only stands for another uid
        # (whose path to this checkout may not even be traversable in CI).
        cli = " ".join(
            map(shlex.quote, [*ds.MFPSEC, "--socket", d.socket_path, "status", "--json"])
        )
        script = f"mount --bind {build} {build} && mount -o remount,bind,ro {build} && exec {cli}"
        r = subprocess.run(
            ["unshare", "--mount", "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=ds.ROOT,
        )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["state"] in ("ready", "degraded")  # (no TPM here)
