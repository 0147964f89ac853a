"""Acceptance 3 of the key chain: a rotation SIGKILLed at every crash point (at least 10)
always leaves a usable chain with every secret, and the next start finishes the job."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from mfpsecd.keys.chain import ChainState
from tests.support.daemon import ROOT
from tests.support.keychain_stack import SECRETS, assert_all_readable, open_stack, put_all
from tests.support.tpm import SwtpmHandle, requires_swtpm, swtpm

pytestmark = requires_swtpm


def _rotate(state: Path, tcti: str, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.rotate_crash", str(state), tcti, str(kill_at)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


async def _recover(work: Path, tpm: SwtpmHandle, kill_at: int, where: str) -> int:
    """Start on the killed run's state; → the generation it found."""
    s = await open_stack(work, tpm)
    assert s.chain.state is ChainState.READY, (kill_at, where)
    await assert_all_readable(s)
    facts = await s.chain.facts()
    assert not facts.rotation_pending  # a pending rotation was finished at start
    # And the chain still works: another rotation, another restart.
    generation = await s.chain.rotate()
    await s.close()
    s = await open_stack(work, tpm)
    await assert_all_readable(s)
    assert (await s.chain.facts()).master_generation == generation
    await s.close()
    return facts.master_generation


def test_rotation_killed_at_every_point_leaves_a_usable_chain(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    with swtpm(tmp_path / "tpm") as tpm:

        async def provision() -> None:
            s = await open_stack(pristine, tpm)
            await put_all(s)  # 4 secrets, re-sealed 3 per batch: 2 batches and an empty read
            await s.close()

        asyncio.run(provision())

        dry = tmp_path / "dry"
        shutil.copytree(pristine, dry)
        r = _rotate(dry, tpm.tcti, 10**6)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"completed: generation 2, (\d+) crash points", r.stdout)
        assert m, r.stdout
        points = int(m.group(1))
        assert points >= 10

        outcomes: dict[str, int] = {}
        for kill_at in range(1, points + 1):
            work = tmp_path / f"kill-{kill_at}"
            shutil.copytree(pristine, work)
            r = _rotate(work, tpm.tcti, kill_at)
            assert r.returncode == -signal.SIGKILL, (kill_at, r.stdout, r.stderr)
            where = r.stdout.strip().split(": ", 1)[1]

            outcomes[f"{kill_at}: {where}"] = asyncio.run(_recover(work, tpm, kill_at, where))
            shutil.rmtree(work)
    # Killed before the pending generation was committed: still generation 1; after it: 2.
    assert set(outcomes.values()) == {1, 2}
    assert len(outcomes) == points and len(SECRETS) == 4
