"""The audit log on disk (SPEC L-2): length- and CRC-framed records in segment files, a
torn tail told apart from damage in the middle, and the records of a log file or an
export read back for verification. Pure functions on bytes: no I/O."""

from __future__ import annotations

import struct
import zlib

import msgspec

from mfpsecd.audit.log_format import CheckpointLine, SignedCheckpoint

_LEN = struct.Struct(">I")
MAX_RECORD_BYTES = 64 * 1024


def frame(payload: bytes) -> bytes:
    """u32 length (big-endian) | payload | u32 CRC-32 of the payload."""
    return _LEN.pack(len(payload)) + payload + _LEN.pack(zlib.crc32(payload))


def _frame_at(view: memoryview, pos: int) -> tuple[bytes, int] | str:
    """The payload of a valid frame starting at pos and where it ends, or why not."""
    if len(view) - pos < _LEN.size:
        return "partial frame header"
    (length,) = _LEN.unpack_from(view, pos)
    end = pos + _LEN.size + length + _LEN.size
    if length == 0 or length > MAX_RECORD_BYTES:
        return f"implausible frame length {length}"
    if end > len(view):
        return "frame runs past the end of the file"
    payload = bytes(view[pos + _LEN.size : pos + _LEN.size + length])
    (crc,) = _LEN.unpack_from(view, end - _LEN.size)
    if zlib.crc32(payload) != crc:
        return "frame checksum mismatch"
    return payload, end


def scan(data: bytes | memoryview) -> tuple[list[bytes], int, str]:
    """→ (payloads, end of the last good frame, why the file does not end there or "").

    A damaged frame followed by good ones is skipped over (the chain check then reports
    the gap where it was); only damage with no good frame after it is a torn tail."""
    view = memoryview(data)
    out: list[bytes] = []
    pos = good_end = 0
    why = ""
    while pos < len(view):
        found = _frame_at(view, pos)
        if isinstance(found, str):
            why = why or found
            resync = next(
                (
                    p
                    for p in range(pos + 1, len(view) - 2 * _LEN.size)
                    if not isinstance(_frame_at(view, p), str)
                ),
                None,
            )
            if resync is None:
                return out, good_end, found
            pos = resync
            continue
        out.append(found[0])
        pos = good_end = found[1]
    return out, good_end, why


_checkpoint_line = msgspec.json.Decoder(CheckpointLine)


def records_of_file(data: bytes) -> tuple[list[bytes], SignedCheckpoint | None, str]:
    """The records of a device log file (frames) or an export (one record per line and
    a signed checkpoint as the last line), the checkpoint, and what was unreadable."""
    if data.startswith(b"{"):
        lines = [line for line in data.split(b"\n") if line]
        checkpoint = None
        if lines and lines[-1].startswith(b'{"checkpoint":'):
            try:
                checkpoint = _checkpoint_line.decode(lines.pop()).checkpoint
            except msgspec.DecodeError:
                return lines, None, "the checkpoint line is damaged"
        return lines, checkpoint, ""
    payloads, end, why = scan(data)
    if end < len(data):
        return payloads, None, f"unreadable from byte {end}: {why}"
    return payloads, None, ""
