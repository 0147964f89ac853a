"""io.mfpsecd.Remote: remote operation under the device's control (SPEC R-1..R-6).

The calls are split by who makes them, each peer class holding only its own: the panel
(the access code to show; approve or deny, which needs a person at the device), the
remote-panel agent (ask for a session, present the code the remote side typed, report
activity, end), the fleet agent (its mode; ask before an operation), and the
administrator (open or close a manage window; cut a session).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import Interface, Method, NoParams

RequestId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}\Z")]
Text = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]+\Z")
]
Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4,8}\Z")]
OperationName = Annotated[
    str, msgspec.Meta(pattern=r"^(firmware-update|settings-change|remote-panel|upload)\Z")
]


class RemoteRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A remote panel request or session."""

    id: str  # what the other calls take
    remote: str  # the remote identity as the agent named it; untrusted text
    phase: str  # code (waiting for it), consent (the panel decides), active, ended
    # The access code, only to the panel and only while phase is code (show it there).
    code: str
    seconds_left: int  # until the code expires, consent times out, or the session idles out
    sensitive: bool  # the agent says a password or protected screen is shown
    end_reason: str  # why it ended ("" while it has not)


class Requests(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Remote panel requests and sessions, and the fleet agent's mode."""

    requests: list[RemoteRequest]  # open ones first, then the last ended ones
    enabled: bool  # remote panel sessions are switched on (remote.enabled)
    mode: str  # the fleet agent's: monitor or manage
    manage_until: str  # RFC 3339 UTC; "" in monitor mode


class SessionParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    remote: Text  # who the remote side is (operator, client), for the panel and the log


class CodeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    request: RequestId  # a request or session (RemoteRequest.id)
    code: Code  # the digits the remote side typed


class RequestParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    request: RequestId  # a request or session (RemoteRequest.id)


class ActivityParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    request: RequestId  # a request or session (RemoteRequest.id)
    # A password or protected screen is shown now: if the session drops, the panel is
    # told to reset its screen and whoever is logged in there is logged out.
    sensitive: bool = False


class EndParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    request: RequestId  # a request or session (RemoteRequest.id)
    reason: Text = "ended"  # for the panel and the log


class Mode(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The fleet agent's mode."""

    mode: str  # monitor (one-way uploads) or manage (two-way, until `until`)
    until: str  # RFC 3339 UTC; "" in monitor mode
    opened_by: str  # who opened the manage window ("" in monitor mode)


class OperationParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    operation: OperationName  # what the fleet agent is about to do for a remote manager


class WindowParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    minutes: Annotated[int, msgspec.Meta(ge=0, le=10080)]  # 0 closes the window now


GET_REQUESTS = Method(
    name="GetRequests",
    doc="Remote panel requests and sessions (the access code only to the panel),\n"
    "and the fleet agent's mode.",
    params=NoParams,
    result=Requests,
    requires=Privilege.REMOTE_PANEL,
)


APPROVE = Method(
    name="Approve",
    doc="The person at the panel lets a request whose code was right become a session.",
    params=RequestParams,
    result=RemoteRequest,
    requires=Privilege.PRESENCE,
    errors=(ErrorCode.REMOTE_REQUEST_NOT_FOUND, ErrorCode.REMOTE_REFUSED),
)


DENY = Method(
    name="Deny",
    doc="The person at the panel refuses a request.",
    params=RequestParams,
    result=RemoteRequest,
    requires=Privilege.PRESENCE,
    errors=(ErrorCode.REMOTE_REQUEST_NOT_FOUND,),
)


DISCONNECT = Method(
    name="Disconnect",
    doc="End a request or session from the device side (the panel, an administrator).",
    params=RequestParams,
    result=RemoteRequest,
    requires=Privilege.REMOTE_PANEL,
    errors=(ErrorCode.REMOTE_REQUEST_NOT_FOUND,),
)


REQUEST_SESSION = Method(
    name="RequestSession",
    doc="The remote-panel agent asks for a session: a code appears on the panel.",
    params=SessionParams,
    result=RemoteRequest,
    requires=Privilege.REMOTE_AGENT,
    errors=(ErrorCode.REMOTE_REFUSED,),
)


PRESENT_CODE = Method(
    name="PresentCode",
    doc="The code the remote side typed; right once, then the panel decides.\n"
    "Wrong codes count against the remote identity and against everyone.",
    params=CodeParams,
    result=RemoteRequest,
    requires=Privilege.REMOTE_AGENT,
    errors=(
        ErrorCode.REMOTE_REQUEST_NOT_FOUND,
        ErrorCode.REMOTE_CODE_WRONG,
        ErrorCode.REMOTE_LOCKED_OUT,
    ),
)


ACTIVITY = Method(
    name="Activity",
    doc="The session is in use (input from the remote side); what it shows.",
    params=ActivityParams,
    result=RemoteRequest,
    requires=Privilege.REMOTE_AGENT,
    errors=(ErrorCode.REMOTE_REQUEST_NOT_FOUND,),
)


END_SESSION = Method(
    name="EndSession",
    doc="The remote side ended the request or session, or the connection dropped.",
    params=EndParams,
    result=RemoteRequest,
    requires=Privilege.REMOTE_AGENT,
    errors=(ErrorCode.REMOTE_REQUEST_NOT_FOUND,),
)


GET_MODE = Method(
    name="GetMode",
    doc="The fleet agent's mode: monitor, or manage until a time.",
    params=NoParams,
    result=Mode,
    requires=Privilege.FLEET_AGENT,
)


CHECK_OPERATION = Method(
    name="CheckOperation",
    doc="Ask before acting for a remote manager: firmware updates, settings changes\n"
    "and remote panel need a manage window (ManageRequired otherwise).",
    params=OperationParams,
    result=Mode,
    requires=Privilege.FLEET_AGENT,
    errors=(ErrorCode.REMOTE_MANAGE_REQUIRED,),
)


SET_MANAGE_WINDOW = Method(
    name="SetManageWindow",
    doc="Open a manage window for this many minutes (0 closes it): it reverts to\n"
    "monitor mode by itself, across restarts too.",
    params=WindowParams,
    result=Mode,
    requires=Privilege.REMOTE_ADMIN,
    errors=(ErrorCode.STATE_UNAVAILABLE,),
)


REMOTE = Interface(
    module=__name__,
    name="io.mfpsecd.Remote",
    doc=(
        "Remote operation under the device's control: remote panel sessions opened from\n"
        "the device side with a one-time access code and the panel's consent, and the\n"
        "fleet agent's monitor and time-limited manage modes."
    ),
    methods=(
        GET_REQUESTS,
        APPROVE,
        DENY,
        DISCONNECT,
        REQUEST_SESSION,
        PRESENT_CODE,
        ACTIVITY,
        END_SESSION,
        GET_MODE,
        CHECK_OPERATION,
        SET_MANAGE_WINDOW,
    ),
)
