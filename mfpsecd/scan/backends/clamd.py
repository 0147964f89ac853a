"""ClamAV's daemon over its Unix socket (SPEC V-1): INSTREAM for a job's data, VERSION for
the engine and its database. Blocking sockets with a deadline on every operation: run in
a worker thread.

INSTREAM: `zINSTREAM\\0`, then chunks of <length, 4 bytes big-endian><data>, then a chunk
of length 0; the reply is `stream: OK`, `stream: <signature> FOUND` or `<reason> ERROR`,
NUL-terminated. clamd closes the connection once the stream passes its StreamMaxLength
and answers `INSTREAM size limit exceeded. ERROR`. It spools the stream to its
TemporaryDirectory before scanning: that directory must be a tmpfs on a device, or
plaintext job data reaches its disk (README).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
import struct

from mfpsecd.scan.model.outcome import Verdict
from mfpsecd.scan.ports import EngineInfo

MAX_REPLY = 4096
_FOUND = re.compile(r"^stream: (.+) FOUND\Z")


def _reply_text(raw: bytes) -> str:
    # The signature name is clamd's own text; cut and decoded defensively all the same.
    return raw.split(b"\0", 1)[0][:MAX_REPLY].decode("utf-8", "replace").strip()


class ClamdStream:
    def __init__(self, path: str, timeout_s: float) -> None:
        self._timeout = timeout_s
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.settimeout(timeout_s)
            self._sock.connect(path)
            self._sock.sendall(b"zINSTREAM\0")
        except OSError:
            self._sock.close()
            raise
        self._broken = ""  # why clamd stopped taking data
        self._fed = 0

    def feed(self, chunk: bytes) -> None:
        if self._broken or not chunk:
            return
        try:
            self._sock.sendall(struct.pack(">I", len(chunk)) + chunk)
            self._fed += len(chunk)
        except TimeoutError:
            self._broken = f"clamd took no data for {self._timeout:g} s"
        except OSError as exc:
            self._broken = f"clamd stopped taking data: {exc.strerror or exc}"

    def _read_reply(self) -> bytes:
        self._sock.settimeout(self._timeout)
        return _read_until_nul(self._sock)

    def finish(self) -> Verdict:
        if not self._broken:
            with contextlib.suppress(OSError):
                self._sock.sendall(b"\0\0\0\0")
        fed = self._fed
        try:
            reply = _reply_text(self._read_reply())
        except TimeoutError:
            return Verdict(failure=f"clamd gave no verdict within {self._timeout:g} s", scanned=fed)
        except OSError as exc:
            reply, self._broken = "", self._broken or f"clamd: {exc.strerror or exc}"
        if reply == "stream: OK":
            return Verdict(scanned=fed)
        if m := _FOUND.match(reply):
            return Verdict(signature=m.group(1), scanned=fed)
        if reply.endswith("ERROR"):
            return Verdict(failure=f"clamd: {reply.removesuffix('ERROR').strip()}", scanned=fed)
        if reply:
            return Verdict(failure=f"clamd answered {reply!r}", scanned=fed)
        why = self._broken or "clamd closed the connection without a verdict"
        return Verdict(failure=why, scanned=fed)

    def close(self) -> None:
        self._sock.close()


class Clamd:
    def __init__(self, path: str, timeout_s: float) -> None:
        self._path = path
        self._timeout = timeout_s

    def stream(self) -> ClamdStream:
        return ClamdStream(self._path, self._timeout)

    def info(self) -> EngineInfo:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
            s.settimeout(self._timeout)
            s.connect(self._path)
            s.sendall(b"zVERSION\0")
            return parse_version(_reply_text(_read_until_nul(s)))


def _read_until_nul(sock: socket.socket) -> bytes:
    """A reply, up to its NUL (or MAX_REPLY bytes, or the end of the connection)."""
    got = b""
    while b"\0" not in got and len(got) < MAX_REPLY:
        part = sock.recv(MAX_REPLY)
        if not part:
            break
        got += part
    return got


def parse_version(text: str) -> EngineInfo:
    """'ClamAV 1.4.6/27480/Sat Dec  5 08:26:02 2026' (official databases loaded) or
    'ClamAV 1.4.6' (local ones only: no version, no date)."""
    engine, _, rest = text.partition("/")
    database, _, date = rest.partition("/")
    when = None
    with contextlib.suppress(ValueError):
        stamp = dt.datetime.strptime(" ".join(date.split()), "%a %b %d %H:%M:%S %Y")
        when = stamp.replace(tzinfo=dt.UTC).timestamp()
    return EngineInfo(engine.strip(), database.strip(), when)
