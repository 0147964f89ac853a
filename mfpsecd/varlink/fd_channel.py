"""Passing file descriptors to the daemon (a job's data to store, a file to read one into).

Varlink has no descriptors, and the IPC server's fast path reads through a transport that
drops ancillary data, so descriptors take a side channel next to the Varlink socket
(`<name>.fd.sock`, same group and mode): a client connects, sends one byte with the
descriptor attached (SCM_RIGHTS) and gets back a one-time token, which it then names in a
Varlink call on its own connection. A token is good once, for the uid that sent the
descriptor, for a minute; the daemon holds at most a few per uid. The call that names it
releases it when it ends, whatever its outcome (Method.passes_descriptor), so only tokens
never named wait for the minute. Peers the Varlink server would not admit are refused
here too.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import structlog

from mfpsecd.base.admission import AdmissionRules, PeerClass, classify
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink.sockets import bind_unix, peer_credentials

log = structlog.get_logger("mfpsecd.fd")

TOKEN_TTL_S = 60.0
PER_UID = 8
MAX_CONNECTIONS = 32


@dataclass
class _Held:
    fd: int
    uid: int
    expires: float


class FdChannel:
    def __init__(self, rules: AdmissionRules, clock: Clock) -> None:
        self._rules = rules
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._sock: socket.socket | None = None
        self._path: Path | None = None
        self._open: set[socket.socket] = set()

    def listen(self, path: Path, group: int | None, activated: socket.socket | None = None) -> str:
        """On the socket systemd passed (mfpsecd-fd.socket), else bound at path."""
        if activated is not None:
            self._sock = activated
            how = "socket activation"
        else:
            self._sock = bind_unix(path, group)
            self._sock.listen(16)
            self._path = path  # ours to remove
            how = str(path)
        asyncio.get_running_loop().add_reader(self._sock, self._accept)
        return how

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            loop.remove_reader(self._sock)
            self._sock.close()
            self._sock = None
        for conn in list(self._open):
            self._drop(conn)
        for held in self._held.values():
            os.close(held.fd)
        self._held.clear()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()

    def take(self, token: str, uid: int) -> int:
        """The descriptor a peer of this uid passed with this token; the caller owns (and
        closes) it. InvalidParameter for an unknown, expired or another uid's token."""
        self._expire()
        held = self._held.get(token)
        if held is None or held.uid != uid:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="descriptor")
        del self._held[token]
        return held.fd

    def take_for(self, token: str, uid: int, *, writing: bool) -> int:
        """take, and check the descriptor is open for the direction it is used in (the
        caller owns and closes it)."""
        fd = self.take(token, uid)
        try:
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            mode = -1
        if mode not in ((os.O_WRONLY, os.O_RDWR) if writing else (os.O_RDONLY, os.O_RDWR)):
            os.close(fd)
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="descriptor")
        return fd

    def release(self, token: str, uid: int) -> None:
        """Close a descriptor its call did not take (the call was refused or failed
        first); nothing for a token already taken, expired or another uid's."""
        held = self._held.get(token)
        if held is not None and held.uid == uid:
            del self._held[token]
            os.close(held.fd)

    # ---------------------------------------------------------------- serving

    def _expire(self) -> None:
        now = self._clock.monotonic()
        for token in [t for t, h in self._held.items() if h.expires <= now]:
            os.close(self._held.pop(token).fd)

    def _accept(self) -> None:
        assert self._sock is not None
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self._open) >= MAX_CONNECTIONS:
            conn.close()
            return
        conn.setblocking(False)
        self._open.add(conn)
        asyncio.get_running_loop().add_reader(conn, self._receive, conn)

    def _drop(self, conn: socket.socket) -> None:
        asyncio.get_running_loop().remove_reader(conn)
        self._open.discard(conn)
        conn.close()

    def _receive(self, conn: socket.socket) -> None:
        fds = array.array("i")
        try:
            data, ancdata, _, _ = conn.recvmsg(1, socket.CMSG_SPACE(fds.itemsize))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        try:
            reply = self._hold(conn, data, list(fds))
        except OSError:
            reply = b"!unreadable peer\n"
        with contextlib.suppress(OSError):
            conn.send(reply)
        self._drop(conn)

    def _hold(self, conn: socket.socket, data: bytes, fds: list[int]) -> bytes:
        peer = peer_credentials(conn)
        if classify(peer, self._rules) is PeerClass.UNKNOWN or len(fds) != 1 or not data:
            for fd in fds:
                os.close(fd)
            return b"!refused\n"
        self._expire()
        if sum(h.uid == peer.uid for h in self._held.values()) >= PER_UID:
            os.close(fds[0])
            return b"!too many descriptors held for this uid\n"
        os.set_inheritable(fds[0], False)
        token = secrets.token_hex(16)
        self._held[token] = _Held(fds[0], peer.uid, self._clock.monotonic() + TOKEN_TTL_S)
        return token.encode() + b"\n"
