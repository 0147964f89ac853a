"""io.mfpsecd.System: daemon identity, status and component health, the S-1 security
posture, and the S-2 event stream."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.base.health import ComponentHealth
from mfpsecd.base.posture import PostureState
from mfpsecd.varlink.schema import Interface, Method, NoParams, restart


class DaemonState(enum.Enum):
    """The daemon's state as a whole."""

    STARTING = "starting"  # self-tests running, components coming up
    READY = "ready"  # serving, every component ok
    DEGRADED = "degraded"  # serving, but at least one component is not ok
    FAILED = "failed"  # a power-on self-test failed: status only, security functions refused
    STOPPING = "stopping"  # shutting down


class Status(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the daemon is and how it is doing."""

    version: str  # mfpsecd's package version, e.g. "0.1.0"; "0+unknown" when not installed
    board: str  # the board profile's name: name in the configuration's [board] section
    board_kind: str  # "device" (real hardware) or "simulated"
    state: DaemonState  # degraded when a component is not ok
    started_at: str  # RFC 3339 UTC: when this daemon run started
    uptime_seconds: float  # seconds since started_at (monotonic clock, to the millisecond)
    boot_count: int  # daemon starts recorded on this device, this one included
    previous_shutdown: str  # "clean", "unclean" (power cut or crash), or "none" at first boot
    components: list[ComponentHealth]  # every component and supervised task, by name
    # Security notices the panel shows at start-up until resolved (stable ids), e.g.
    # "administrator-unset": first start, no administrator password yet.
    notices: list[str] = []


class PostureItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One protection of the S-1 posture, as the panel shows it."""

    id: str  # stable: "admin-password", "storage-encryption", ... (see README)
    title: str  # the name the panel shows, e.g. "Temporary data overwrite"
    state: PostureState  # on, off, not_applicable (on this board), not_managed (by mfpsecd)
    setting: str  # the setting behind the state, e.g. "box documents deleted after 30 days"
    detail: str  # why, or what to do, when the setting does not say it ("" otherwise)
    since: str  # RFC 3339 UTC: since when the item has had this state and setting


MAX_REPORT_BYTES = 256 << 10  # fifteen items and a dozen checks: a few KiB


class PostureReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The posture as a signed document, with the security level it grades to."""

    # The signed report, canonical JSON (README: "Signed posture report"): keep it byte
    # for byte; `mfpsec posture verify` checks it.
    document: str
    level: int  # the security level, 0-3 (README: "Security levels")
    level_text: str  # as fwupd writes its HSI: "MFPSEC:2", "MFPSEC:2!" with runtime issues
    sha256: str  # hex SHA-256 of the document, to name it in a ticket or an audit


class VerifyReportParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # a signed posture report, as GetPostureReport gave it
    document: Annotated[str, msgspec.Meta(max_length=MAX_REPORT_BYTES)]


class ReportVerdict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A report this device signed: whose key, and what it says."""

    identity: str  # fingerprint of the identity key that signed it
    current: bool  # true: the key the TPM holds now; false: an earlier one its history proves
    at: str  # RFC 3339 UTC: when the report was made
    level_text: str  # the level the report states
    sha256: str  # hex SHA-256 of the document checked


class Posture(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The security posture: every S-1 item, in the order the panel shows them."""

    items: list[PostureItem]  # every S-1 item once, in the order the panel shows them
    at: str  # RFC 3339 UTC: when it was read


class Event(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One audit record, as the caller may see it."""

    seq: int  # the record's sequence number in the audit log
    time: str  # RFC 3339 UTC
    type: str  # the audit event type, e.g. "auth.lockout" (README's event catalogue)
    outcome: str  # "success" or "failure"
    alert: str  # the alert rule it matches, e.g. "account locked"; "" when none does
    object: str  # what it is about; untrusted text (a user name, a path): escape it to show it
    user: str  # who did it; "" for the daemon's own, or for a caller who may not read the log
    # The record's details, each value as text (numbers in decimal, true/false); {} for a
    # caller who may not read the audit log.
    details: dict[str, str]


class Events(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One reply of the event stream."""

    events: list[Event]  # in order; empty in a keep-alive
    last_seq: int  # where this client is now: after a reconnect, resume with after=last_seq
    missed: int  # records the log no longer held when this client came to read them
    behind: int  # records already written that this client has not been sent yet (its lag)
    keepalive: bool  # nothing happened for keepalive_s: the stream is alive


class WatchEventsParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The last seq this client has (last_seq of its last reply): the stream resumes after
    # it. -1: from now on; 0: everything the log still holds.
    after: Annotated[int, msgspec.Meta(ge=-1)] = -1
    # Seconds without an event before a keep-alive reply.
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=300)] = 30


GET_STATUS = Method(
    name="GetStatus",
    doc="Version, board, uptime and the health of every component.",
    params=NoParams,
    result=Status,
    requires=Privilege.STATUS_READ,
)


WATCH_STATUS = Method(
    name="WatchStatus",
    doc=(
        "Stream the status: the current one first, then a new reply each time the\n"
        "daemon state or a component's health changes, and at least every 15 s (a\n"
        "keep-alive: a quiet stream is not a dead one). Call with more=true."
    ),
    params=NoParams,
    result=Status,
    requires=Privilege.STATUS_READ,
    streams=True,
    resume=restart,
)


GET_POSTURE = Method(
    name="GetPosture",
    doc=(
        "The S-1 security posture: each protection with its state, the setting behind it\n"
        "and since when. An item whose part of the daemon could not be read is off, with\n"
        "why: never on unchecked."
    ),
    params=NoParams,
    result=Posture,
    requires=Privilege.STATUS_READ,
)


GET_POSTURE_REPORT = Method(
    name="GetPostureReport",
    doc=(
        "The posture as a document signed by the device identity key, graded into a\n"
        'security level the way fwupd grades a PC (README: "Security levels"), with\n'
        "PWG 5110.1 attribute names where they exist. The CLI renders it as a PDF.\n"
        "A report signed less than 5 s ago is given again while the posture is the\n"
        "same: the TPM signs at most one every 5 s for this method."
    ),
    params=NoParams,
    result=PostureReport,
    requires=Privilege.STATUS_READ,
    errors=(ErrorCode.KEYS_UNAVAILABLE, ErrorCode.KEY_INTEGRITY, ErrorCode.TPM_FAILED),
)


VERIFY_POSTURE_REPORT = Method(
    name="VerifyPostureReport",
    doc=(
        "Check a posture report against this device's identity keys, the one it holds\n"
        "now and every earlier one its identity history proves (never against the key\n"
        "the document carries). ReportForeign: an intact signature by a key this device\n"
        "never had."
    ),
    params=VerifyReportParams,
    result=ReportVerdict,
    requires=Privilege.STATUS_READ,
    errors=(
        ErrorCode.SYSTEM_REPORT_INVALID,
        ErrorCode.SYSTEM_REPORT_FOREIGN,
        ErrorCode.KEYS_UNAVAILABLE,
        ErrorCode.KEY_INTEGRITY,
        ErrorCode.TPM_FAILED,
    ),
)


def _resume_events(p: WatchEventsParams, last: Events | None) -> WatchEventsParams:
    """After a lost connection: from the last record delivered, so nothing is missed."""
    return p if last is None else msgspec.structs.replace(p, after=last.last_seq)


WATCH_EVENTS = Method(
    name="WatchEvents",
    doc=(
        "Stream alerts and security events as they are recorded (call with more=true):\n"
        "the audit records an alert rule matches (lockouts, floods, tampering, refused\n"
        "firmware, failed sanitizations, a protection of the posture lost, ...); every\n"
        "record, with details, for a caller who may read the audit log. Resumable: each\n"
        "reply says last_seq, and a reconnecting client passes it as after. A slow client\n"
        "holds nothing in the daemon: it reads on at its own pace and is told its lag;\n"
        "records the log dropped before it read them are counted in missed. The first\n"
        "reply comes at once (a keep-alive saying where the stream starts)."
    ),
    params=WatchEventsParams,
    result=Events,
    requires=Privilege.STATUS_READ,
    streams=True,
    resume=_resume_events,
)


SYSTEM = Interface(
    name="io.mfpsecd.System",
    module=__name__,
    doc=(
        "The mfpsecd security daemon: its version, board, state, the health of its parts,\n"
        "the security posture and the stream of security events."
    ),
    methods=(
        GET_STATUS,
        WATCH_STATUS,
        GET_POSTURE,
        GET_POSTURE_REPORT,
        VERIFY_POSTURE_REPORT,
        WATCH_EVENTS,
    ),
)
