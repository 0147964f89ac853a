"""What the daemon and the purge helper say to each other: one JSON request, the
caller's side shut, one JSON reply, the connection closed. The types are the MediaPurger
port's own (MediaProbe, DeviceProgress), so nothing is translated on the way."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from mfpsecd.wipe.ports import DeviceProgress, MediaProbe

MAX_REQUEST = 16 << 10  # a device path, a method, a drive password
MAX_REPLY = 1 << 20  # a probe carries the raw Identify pages (4 KiB each, in base64)

Op = Literal["probe", "issue", "progress"]


class HelperRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    op: Op
    device: str  # the whole disk's node under /dev
    method: str = ""  # a PurgeMethod's value (issue, progress)
    secret: str = ""  # the drive's one-time password (ATA security erase)
    # How long the command may take (issue): up to a week (a sanitize's own estimate
    # times three can exceed wipe.purge_timeout_min's 48 hours).
    timeout_s: Annotated[float, msgspec.Meta(ge=0, le=7 * 86400)] = 0.0


class HelperReply(msgspec.Struct, frozen=True, omit_defaults=True):
    said: str = ""  # issue: what the device or tool said
    probe: MediaProbe | None = None
    progress: DeviceProgress | None = None
    errno: int = 0  # the device or tool failed: the OSError's number ...
    error: str = ""  # ... and its text
    refused: str = ""  # the helper would not do it, and why


_request = msgspec.json.Decoder(HelperRequest)
_reply = msgspec.json.Decoder(HelperReply)
_encoder = msgspec.json.Encoder()


def encode_request(request: HelperRequest) -> bytes:
    return _encoder.encode(request)


def decode_request(data: bytes) -> HelperRequest:
    """ValueError says what is wrong with it."""
    try:
        return _request.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None


def encode_reply(reply: HelperReply) -> bytes:
    return _encoder.encode(reply)


def decode_reply(data: bytes) -> HelperReply:
    try:
        return _reply.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"purge helper reply: {exc}") from None
