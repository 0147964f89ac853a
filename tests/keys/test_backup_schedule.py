"""The scheduled key backup (issue 25, S-1 "backup schedule"; K-2): the first backup runs
when the schedule is set, the next ones when due on the injected clock, this device's
older files beyond `keep` are deleted, a failed run is retried and reported, and the
schedule and its sealed passphrase survive a restart and go when it is cleared."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthState
from mfpsecd.base.posture import PostureState
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.backup import BackupResult
from mfpsecd.keys.backup_schedule import (
    COMPONENT,
    PASSPHRASE_SECRET,
    RETRY_S,
    BackupScheduler,
    Schedule,
)
from mfpsecd.keys.model import backup_file
from mfpsecd.keys.posture import backup_schedule
from tests.support.keychain_stack import PASSPHRASE, Stack, expect, open_stack, run
from tests.support.tpm import SwtpmHandle, requires_swtpm, swtpm

pytestmark = requires_swtpm

Runs = list[tuple[Schedule, BackupResult | None, MfpsecError | None]]


def _scheduler(s: Stack, runs: Runs) -> BackupScheduler:
    async def record(
        schedule: Schedule, result: BackupResult | None, error: MfpsecError | None
    ) -> None:
        runs.append((schedule, result, error))

    return BackupScheduler(
        s.chain,
        s.secrets,
        s.state,
        s.clock,
        resolve=Path,
        health=s.health,
        record=record,
    )


async def _until(done: Callable[[], bool]) -> None:
    """Until the run loop has done it (a backup takes real time: Argon2id, the TPM)."""
    for _ in range(6000):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the scheduled run did not happen")


async def _until_sleeping(s: Stack) -> None:
    """Until the run loop waits on the clock for the next run."""
    await _until(lambda: s.clock.sleepers > 0)


def _ours(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(backup_file.SUFFIX))


def test_scheduled_backups_run_when_due_keep_the_newest_and_report_failures(
    tmp_path: Path,
) -> None:
    target = tmp_path / "stick"
    target.mkdir()
    foreign = target / f"mfpsecd-keys-0000000000000000-20260101T000000000Z{backup_file.SUFFIX}"
    foreign.write_bytes(b"another device's backup")

    with swtpm(tmp_path / "tpm") as tpm:
        run(lambda: _scenario(tmp_path, tpm, target, foreign))


async def _scenario(tmp_path: Path, tpm: SwtpmHandle, target: Path, foreign: Path) -> None:
    s = await open_stack(tmp_path, tpm)
    runs: Runs = []
    sched = _scheduler(s, runs)
    await sched.start()
    assert backup_schedule(sched.schedule).state is PostureState.OFF
    with expect(ErrorCode.PASSPHRASE_TOO_WEAK):
        await sched.set(SecretBytes(bytearray(b"short")), str(target), 1, 2)
    with expect(ErrorCode.BACKUP_TARGET_UNUSABLE):
        await sched.set(SecretBytes(bytearray(PASSPHRASE)), str(tmp_path / "absent"), 1, 2)
    assert sched.schedule is None  # a refused schedule leaves nothing behind
    with expect(ErrorCode.SECRET_NOT_FOUND):
        await s.secrets.get(PASSPHRASE_SECRET)

    first = await sched.set(SecretBytes(bytearray(PASSPHRASE)), str(target), 1, 2)
    assert first.last_result == "ok" and Path(first.last_path).exists()
    item = backup_schedule(sched.schedule)
    assert (item.state, item.setting) == (
        PostureState.ON,
        f"every 1 day(s) to {target}, keeping 2",
    )

    task = asyncio.create_task(sched.run())
    for day in range(1, 4):  # each day another backup, by the run loop
        await _until_sleeping(s)
        await s.clock.advance(86400)
        await _until(lambda: len(runs) == day)  # noqa: B023 (read at once)
    assert [r[2] for r in runs] == [None, None, None]
    ours = [n for n in _ours(target) if n != foreign.name]
    assert len(ours) == 2  # keep=2: the older ones are gone
    last = runs[-1][1]
    assert last is not None and ours[-1] == last.path.name
    assert foreign.exists()  # never another device's file

    # The stick is gone: the run fails, is recorded, retried in an hour.
    for name in _ours(target):
        (target / name).unlink()
    target.rmdir()
    await _until_sleeping(s)
    await s.clock.advance(86400)
    await _until(lambda: len(runs) == 4)
    failed = runs[-1]
    assert failed[1] is None and failed[2] is not None
    assert failed[0].last_result == "failed"
    assert "BackupTargetUnusable" in failed[0].last_error
    now = s.clock.now().timestamp()
    assert abs(failed[0].next_at - (now + RETRY_S)) < 2
    health = s.health.get(COMPONENT)
    assert health is not None and health.state is HealthState.DEGRADED
    assert backup_schedule(sched.schedule).state is PostureState.OFF
    target.mkdir()  # back: the retry succeeds
    await _until_sleeping(s)
    await s.clock.advance(RETRY_S + 1)
    await _until(lambda: len(runs) == 5)
    assert runs[-1][0].last_result == "ok"
    assert backup_schedule(sched.schedule).state is PostureState.ON
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await s.close()

    # A restart keeps the schedule; clearing it deletes the sealed passphrase.
    again = await open_stack(tmp_path, tpm)
    later = _scheduler(again, [])
    await later.start()
    assert later.schedule is not None and later.schedule.keep == 2
    await later.clear()
    assert later.schedule is None
    with expect(ErrorCode.SECRET_NOT_FOUND):
        await again.secrets.get(PASSPHRASE_SECRET)
    await _scheduler(again, []).start()
    await again.close()
