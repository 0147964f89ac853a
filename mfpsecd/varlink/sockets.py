"""The server's sockets: the one systemd passed (socket activation) or one it binds, and
who is on the other end (SO_PEERCRED, SO_PEERGROUPS)."""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from pathlib import Path

from mfpsecd.base.admission import PeerCredentials
from mfpsecd.base.errors import ErrorCode, MfpsecError

SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
SD_LISTEN_FDS_START = 3


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    groups: tuple[int, ...] = ()
    size = 64
    while size <= 65536:
        try:
            graw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * size)
        except OSError as exc:
            if exc.errno == errno.ERANGE:
                size *= 16
                continue
            break  # kernel without SO_PEERGROUPS: primary gid only
        groups = struct.unpack(f"{len(graw) // 4}I", graw)
        break
    return PeerCredentials(pid=pid, uid=uid, gid=gid, groups=groups)


def activated_sockets() -> dict[str, socket.socket]:
    """The sockets systemd passed (LISTEN_FDS), by their FileDescriptorName: "varlink"
    (or, unnamed, the first one) and "fd" (the descriptor side channel). Others are closed:
    nothing we spawn inherits them."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return {}
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        count = 0
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)  # not inherited by anything we spawn
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(count, 0)))
    by_name = {names[i] if i < len(names) else "": fd for i, fd in enumerate(fds)}
    wanted: dict[str, int] = {}
    if "fd" in by_name:
        wanted["fd"] = by_name["fd"]
    varlink = by_name.get("varlink", next((fd for fd in fds if fd not in wanted.values()), None))
    if varlink is not None:
        wanted["varlink"] = varlink
    out: dict[str, socket.socket] = {}
    for fd in fds:
        if fd not in wanted.values():
            os.close(fd)
    for name, fd in wanted.items():
        sock = socket.socket(fileno=fd)
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"the activation socket {name!r} is not AF_UNIX stream",
                key="mfpsecd.socket",
                reason="ListenStream= must be a unix path",
            )
        os.set_inheritable(fd, False)
        sock.setblocking(False)
        out[name] = sock
    return out


def bind_unix(path: Path, group: int | None) -> socket.socket:
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    if group is not None:
        os.chown(path.parent, -1, group)
    if path.exists() or path.is_symlink():
        st = path.lstat()
        if not stat.S_ISSOCK(st.st_mode):
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"{path} exists and is not a socket",
                key="ipc.socket_path",
                reason="exists and is not a socket",
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # stale socket of a daemon that did not stop cleanly
        else:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"another daemon is serving {path}",
                key="ipc.socket_path",
                reason="in use by a running daemon",
            )
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old_umask = os.umask(0o177)  # never world-accessible, not even between bind and chmod
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    if group is not None:
        os.chown(path, -1, group)
    os.chmod(path, 0o660)
    sock.setblocking(False)
    return sock
