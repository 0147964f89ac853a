"""Issue 23: every checkout's simulated board used the namespace `mfpsim`, so two daemons
on one machine overwrote each other's IP filter. `{profile}` in a board profile's netns
stands for a hash of the profile's directory; `make sim-net` derives the same name."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from mfpsecd.base.config.loader import load_board, load_config
from tests.support import daemon as ds


def _namespaces(profile: Path) -> set[str | None]:
    config = load_config(ds.ROOT / "etc" / "mfpsecd.toml")
    return {n.netns for n in load_board(config, str(profile)).profile.nics}


def test_each_checkout_simulates_its_board_in_a_namespace_of_its_own(tmp_path: Path) -> None:
    copies = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        copies.append(tmp_path / name / "sim.toml")
        shutil.copy(ds.ROOT / "hw" / "sim.toml", copies[-1])
    first, second = (_namespaces(c) for c in copies)
    digest = hashlib.sha256(str((tmp_path / "one").resolve()).encode()).hexdigest()
    assert first == {f"mfpsim-{digest[:8]}"}
    assert second != first and len(second) == 1
    made = subprocess.run(
        ["make", "-s", "sim-ns"],
        capture_output=True,
        text=True,
        cwd=ds.ROOT,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert _namespaces(ds.ROOT / "hw" / "sim.toml") == {made}
