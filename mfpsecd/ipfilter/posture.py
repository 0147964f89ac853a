"""The IP filter's part of the S-1 posture: on when the kernel holds the ruleset and it
filters by source address (permitted or refused ranges, or the quick filter)."""

from __future__ import annotations

from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.ipfilter.service import NetView


def ip_filter(view: NetView) -> PostureItem:
    p = view.policy
    setting = (
        f"{len(p.allow)} permitted and {len(p.deny)} refused range(s), quick filter "
        f"{'on' if p.quick else 'off'}"
    )
    if not view.in_kernel:
        return PostureItem(
            PostureId.IP_FILTER,
            PostureState.OFF,
            setting,
            "the ruleset is not in the kernel: it is being put back",
        )
    if not (p.allow or p.deny or p.quick):
        return PostureItem(
            PostureId.IP_FILTER,
            PostureState.OFF,
            setting,
            "no address filtering: any source may reach the open ports",
        )
    return PostureItem(PostureId.IP_FILTER, PostureState.ON, setting)
