"""The storage lock password's part of the S-1 posture: the ATA security user password of
the board's drives, as each drive's own Identify data reports it. A drive that has no ATA
security feature set has nothing to lock this way; self-encrypting (TCG Opal) locking is
not something this daemon manages."""

from __future__ import annotations

from dataclasses import dataclass

from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.wipe.ports import MediaProbe


@dataclass(frozen=True)
class DiskFacts:
    """One disk of the board as it described itself (probe None: it could not say)."""

    id: str
    probe: MediaProbe | None
    problem: str = ""


def storage_lock(disks: list[DiskFacts]) -> PostureItem:
    unknown = [f"{d.id} ({d.problem})" for d in disks if d.probe is None]
    if unknown:
        return _item(PostureState.OFF, "unknown", f"could not ask {', '.join(unknown)}")
    ata = [(d.id, d.probe.capabilities.ata) for d in disks if d.probe is not None]
    lockable = [(i, a) for i, a in ata if a is not None and a.security_supported]
    if not lockable:
        opal = [
            d.id
            for d in disks
            if d.probe is not None
            and d.probe.capabilities.nvme is not None
            and d.probe.capabilities.nvme.security_send_receive
        ]
        if opal:
            return _item(
                PostureState.NOT_MANAGED,
                "no ATA security",
                f"{', '.join(opal)}: self-encrypting drive locking is not managed by this daemon",
            )
        kinds = ", ".join(
            f"{d.id}: {d.probe.capabilities.transport}" for d in disks if d.probe is not None
        )
        return _item(
            PostureState.NOT_APPLICABLE,
            "no lockable drive",
            f"the board's storage has no ATA lock password ({kinds or 'no disks'})",
        )
    unset = [i for i, a in lockable if not a.security_enabled]
    if unset:
        return _item(
            PostureState.OFF,
            "no lock password",
            f"no ATA user password on {', '.join(unset)}",
        )
    return _item(
        PostureState.ON,
        f"ATA user password set on {', '.join(i for i, _ in lockable)}",
        "",
    )


def _item(state: PostureState, setting: str, detail: str) -> PostureItem:
    return PostureItem(PostureId.STORAGE_LOCK_PASSWORD, state, setting, detail)
