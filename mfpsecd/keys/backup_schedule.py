"""The key backup on a schedule (K-2; the S-1 posture's "backup schedule"): every N days
the wrapping key is backed up, under the passphrase the administrator gave when setting
the schedule (sealed in the secret store), into a directory or onto a USB stick wherever
it is mounted; this device's older backups there beyond the newest N are deleted.

Setting a schedule runs its first backup at once, so a wrong target is found while the
administrator is there, not weeks later. A run that fails (the stick is out, the disk is
full) is retried hourly, and the posture and status say so until one succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import structlog

from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.base.waits import first_of
from mfpsecd.keys.backup import BackupResult
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.chain_rows import set_fact
from mfpsecd.keys.model import backup_file
from mfpsecd.keys.secrets import SecretKind, SecretStore

log = structlog.get_logger("mfpsecd.keys")

PASSPHRASE_SECRET = "keys.backup-passphrase"  # noqa: S105 (the secret's name)
RETRY_S = 3600.0
COMPONENT = "key-backup"
_FACT = "backup_schedule"


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    target: str  # a directory, or a backup target id (a USB stick, wherever it is mounted)
    every_days: int
    keep: int  # this device's newest backups kept in the target
    next_at: float  # wall-clock epoch seconds
    last_at: str = ""
    last_result: str = ""  # "ok", "failed", or "" before the first run
    last_error: str = ""
    last_path: str = ""


# What a run did, for the audit log: the schedule, and the backup or why there is none.
RunRecorder = Callable[[Schedule, BackupResult | None, MfpsecError | None], Awaitable[None]]


class BackupScheduler:
    def __init__(
        self,
        chain: KeyChain,
        secrets: SecretStore,
        state: StateStore,
        clock: Clock,
        *,
        resolve: Callable[[str], Path],
        health: HealthRegistry,
        record: RunRecorder,
    ) -> None:
        self._chain = chain
        self._secrets = secrets
        self._state = state
        self._clock = clock
        self._resolve = resolve
        self._health = health
        self._record = record
        self._schedule: Schedule | None = None
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()  # one run, set or clear at a time

    @property
    def schedule(self) -> Schedule | None:
        return self._schedule

    async def start(self) -> None:
        raw = await self._state.run(
            lambda conn: conn.execute(
                "SELECT value FROM key_facts WHERE key = ?", (_FACT,)
            ).fetchone()
        )
        if raw is not None:
            try:
                self._schedule = msgspec.json.decode(str(raw[0]), type=Schedule)
            except msgspec.DecodeError:
                log.error("backup_schedule_unreadable")
        self._report()

    async def set(
        self, passphrase: SecretBytes, target: str, every_days: int, keep: int
    ) -> Schedule:
        """A new schedule; its first backup runs now and must succeed for it to stand."""
        async with self._lock:
            result = await self._chain.backup(passphrase, self._resolve(target))
            now = self._clock.now().timestamp()
            schedule = Schedule(
                target=target,
                every_days=every_days,
                keep=keep,
                next_at=now + every_days * 86400.0,
                last_at=result.created_at,
                last_result="ok",
                last_path=str(result.path),
            )
            await self._secrets.put(PASSPHRASE_SECRET, SecretKind.CREDENTIAL, passphrase)
            await self._save(schedule)
            await asyncio.to_thread(_prune, result, keep)
        self._changed.set()
        return schedule

    async def clear(self) -> None:
        async with self._lock:
            with contextlib.suppress(MfpsecError):
                await self._secrets.delete(PASSPHRASE_SECRET)  # gone already: cleared
            await self._state.run(
                lambda conn: conn.execute("DELETE FROM key_facts WHERE key = ?", (_FACT,))
            )
            self._schedule = None
            self._report()
        self._changed.set()

    async def run(self) -> None:
        """Supervised task: each backup when it is due."""
        while True:
            self._changed.clear()
            schedule = self._schedule
            if schedule is None:
                await self._changed.wait()
                continue
            wait = schedule.next_at - self._clock.now().timestamp()
            if wait > 0:
                await first_of(self._clock.sleep(wait), self._changed.wait())
                continue
            await self.run_due()

    async def run_due(self) -> None:
        """The scheduled backup, if one is due now."""
        async with self._lock:
            schedule = self._schedule
            if schedule is None or schedule.next_at > self._clock.now().timestamp():
                return
            result: BackupResult | None = None
            error: MfpsecError | None = None
            try:
                with await self._secrets.get(PASSPHRASE_SECRET) as passphrase:
                    result = await self._chain.backup(passphrase, self._resolve(schedule.target))
            except MfpsecError as exc:
                error = exc
            now = self._clock.now().timestamp()
            if result is not None:
                schedule = msgspec.structs.replace(
                    schedule,
                    next_at=now + schedule.every_days * 86400.0,
                    last_at=result.created_at,
                    last_result="ok",
                    last_error="",
                    last_path=str(result.path),
                )
                await asyncio.to_thread(_prune, result, schedule.keep)
            else:
                assert error is not None
                schedule = msgspec.structs.replace(
                    schedule,
                    next_at=now + min(RETRY_S, schedule.every_days * 86400.0),
                    last_at=rfc3339(self._clock),
                    last_result="failed",
                    last_error=_why(error),
                )
                log.warning("key_backup_failed", target=schedule.target, error=_why(error))
            await self._save(schedule)
        await self._record(schedule, result, error)

    async def _save(self, schedule: Schedule) -> None:
        text = msgspec.json.encode(schedule).decode()
        await self._state.run(lambda conn: _store(conn, text))
        self._schedule = schedule
        self._report()

    def _report(self) -> None:
        s = self._schedule
        if s is None:
            self._health.set(COMPONENT, HealthState.OK, "no schedule: backups only by hand")
        elif s.last_result == "failed":
            self._health.set(
                COMPONENT,
                HealthState.DEGRADED,
                f"the last scheduled backup failed ({s.last_error}); retried hourly",
            )
        else:
            self._health.set(
                COMPONENT, HealthState.OK, f"every {s.every_days} day(s) to {s.target}"
            )


def _prune(result: BackupResult, keep: int) -> None:
    """This device's backups in the target beyond the newest `keep` (by their names'
    time stamps); other devices' files and anything else are left alone."""
    mine = f"mfpsecd-keys-{result.fingerprint[:16]}-"
    try:
        names = sorted(
            n
            for n in os.listdir(result.path.parent)
            if n.startswith(mine) and n.endswith(backup_file.SUFFIX)
        )
    except OSError as exc:
        log.warning("key_backup_prune_failed", error=str(exc))
        return
    for name in names[: max(len(names) - keep, 0)]:
        try:
            os.unlink(result.path.parent / name)
        except OSError as exc:
            log.warning("key_backup_prune_failed", file=name, error=str(exc))


def _store(conn: StateConnection, text: str) -> None:
    set_fact(conn, _FACT, text)


def _why(error: MfpsecError) -> str:
    reason = error.params.get("reason")
    return f"{error.code.wire_name}: {reason}" if reason else error.code.wire_name
