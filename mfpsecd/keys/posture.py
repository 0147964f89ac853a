"""The key chain's part of the S-1 posture: the TPM that roots it, and the schedule of the
key backup (K-2)."""

from __future__ import annotations

import datetime as dt

from mfpsecd.base.clock import utc_text
from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.keys.backup_schedule import Schedule
from mfpsecd.keys.chain import ChainState, KeyFacts


def tpm(facts: KeyFacts) -> PostureItem:
    if facts.software_keys:
        return PostureItem(
            PostureId.TPM,
            PostureState.OFF,
            "software keys",
            "no TPM protects the keys on this board: they are only as safe as its disk",
        )
    chip = " ".join(x for x in (facts.tpm_manufacturer, facts.tpm_firmware) if x)
    setting = f"{facts.tpm_backend} TPM" + (f" ({chip})" if chip else "")
    if facts.state is not ChainState.READY:
        why = facts.reason or f"the key chain is {facts.state.value}"
        return PostureItem(PostureId.TPM, PostureState.OFF, setting, why)
    bound = f"keys bound to {facts.bound_to}" if facts.bound_to else "keys not bound to PCRs"
    return PostureItem(PostureId.TPM, PostureState.ON, setting, bound)


def backup_schedule(schedule: Schedule | None) -> PostureItem:
    if schedule is None:
        return PostureItem(
            PostureId.BACKUP_SCHEDULE,
            PostureState.OFF,
            "no schedule",
            "the key backup runs only by hand: set a schedule (mfpsec keys backup-schedule)",
        )
    setting = f"every {schedule.every_days} day(s) to {schedule.target}, keeping {schedule.keep}"
    if schedule.last_result == "failed":
        return PostureItem(
            PostureId.BACKUP_SCHEDULE,
            PostureState.OFF,
            setting,
            f"the last backup failed at {schedule.last_at} ({schedule.last_error}); retried hourly",
        )
    return PostureItem(
        PostureId.BACKUP_SCHEDULE,
        PostureState.ON,
        setting,
        f"last backup {schedule.last_at}; next {_at(schedule.next_at)}",
    )


def _at(epoch: float) -> str:
    return utc_text(dt.datetime.fromtimestamp(epoch, dt.UTC), "seconds")
