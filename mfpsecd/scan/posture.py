"""The virus scan's part of the S-1 posture (V-3): on when job data is scanned and the
engine answers with a database young enough; off when scanning is not configured or the
engine is unusable (the detail says what jobs get meanwhile)."""

from __future__ import annotations

from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.scan.model.outcome import FailurePolicy
from mfpsecd.scan.service import VirusScan


def virus_scan(scan: VirusScan | None) -> PostureItem:
    if scan is None:
        return PostureItem(
            PostureId.VIRUS_SCAN,
            PostureState.OFF,
            "not configured",
            "job data is stored unscanned: set scan.clamd_socket",
        )
    s = scan.settings
    setting = (
        f"{s.engine}; RX jobs with a virus: {s.rx_option.value}; "
        f"when a scan fails: {s.on_failure.value}"
    )
    usable, text = scan.state
    if usable:
        return PostureItem(PostureId.VIRUS_SCAN, PostureState.ON, setting, text)
    meanwhile = (
        "jobs are refused meanwhile"
        if s.on_failure is FailurePolicy.REFUSE
        else "jobs are stored unscanned meanwhile (marked and audited)"
    )
    return PostureItem(PostureId.VIRUS_SCAN, PostureState.OFF, setting, f"{text}; {meanwhile}")
