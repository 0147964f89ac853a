"""The purge helper: the one process that sends storage devices their own purge commands
(NVMe Format / Sanitize, ATA security erase and sanitize, SCSI FORMAT UNIT, eMMC secure
erase) and reads what only a privileged caller may read (NVMe logs, ATA IDENTIFY).

Those need CAP_SYS_ADMIN (NVMe admin commands) and CAP_SYS_RAWIO (SG_IO pass-through),
which the daemon does not hold. systemd starts one helper per connection on
`mfpsecd-purge.socket` (Accept=yes, the connection on standard input), with exactly
those two capabilities; the helper answers one request and exits, so nothing
privileged stays running between purges.

It is the last check before a device command, so it trusts nothing it is told: the peer
must be the daemon's user (or root), the device a whole block disk under /dev that
nothing has mounted or holds, and a sanitize (which erases every namespace of an NVMe
controller) is refused while another namespace is in use.
"""

from __future__ import annotations

import errno
import os
import pwd
import socket
import stat
import struct
from pathlib import Path

import structlog

from mfpsecd.wipe.backends.disks import block_in_use
from mfpsecd.wipe.backends.helper_messages import (
    MAX_REQUEST,
    HelperReply,
    HelperRequest,
    decode_request,
    encode_reply,
)
from mfpsecd.wipe.backends.media_purge import DevicePurger
from mfpsecd.wipe.model.purge_plan import PurgeMethod

log = structlog.get_logger("mfpsecd.purge_helper")
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_DRAIN_LIMIT = 1 << 20


class Refused(Exception):
    """The request is not carried out, and why (said to the caller)."""


def _peer_uid(conn: socket.socket) -> int:
    _pid, uid, _gid = _CRED.unpack(
        conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
    )
    return int(uid)


def _read_request(conn: socket.socket, timeout_s: float) -> bytes:
    """Up to MAX_REQUEST bytes until the caller shuts down its side; a caller that stalls
    is given timeout_s in all, not per read."""
    conn.settimeout(timeout_s)
    data = bytearray()
    while len(data) <= MAX_REQUEST:
        chunk = conn.recv(MAX_REQUEST + 1 - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
    raise Refused(f"the request is larger than {MAX_REQUEST} bytes")


def _drain(conn: socket.socket) -> None:
    """Read what a refused caller still sends (a bounded amount, within the socket's
    timeout): closing a Unix socket with unread data resets it, and the caller would
    lose the reply that says why it was refused."""
    left = _DRAIN_LIMIT
    while left > 0 and (chunk := conn.recv(min(left, 65536))):
        left -= len(chunk)


def _device(path_text: str, sys_root: Path, proc_root: Path) -> Path:
    path = Path(path_text)
    if not path.is_absolute() or path.parts[:2] != ("/", "dev") or ".." in path.parts:
        raise Refused(f"{path_text!r} is not a device node under /dev")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise Refused(f"{path}: {exc.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise Refused(f"{path} is not a block device")
    why = block_in_use(st.st_rdev, sys_root=sys_root, proc_root=proc_root)
    if why:
        raise Refused(f"{path} is {why}")
    return path


class PurgeHelper:
    def __init__(
        self,
        *,
        allowed_uids: frozenset[int],
        sys_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        read_timeout_s: float = 10.0,
    ) -> None:
        self._allowed = allowed_uids
        self._sys_root = sys_root
        self._proc_root = proc_root
        self._read_timeout_s = read_timeout_s
        self._purger = DevicePurger(sys_root=sys_root, proc_root=proc_root)

    def serve(self, conn: socket.socket) -> None:
        """Answer the one request on conn (always with a reply, unless the caller is
        gone)."""
        try:
            reply = self._answer(conn)
        except Refused as exc:
            log.warning("purge_helper_refused", reason=str(exc))
            reply = HelperReply(refused=str(exc))
        try:
            conn.settimeout(self._read_timeout_s)
            conn.sendall(encode_reply(reply))
            conn.shutdown(socket.SHUT_WR)
            _drain(conn)
        except OSError as exc:
            log.warning("purge_helper_caller_gone", error=str(exc))

    def _answer(self, conn: socket.socket) -> HelperReply:
        uid = _peer_uid(conn)
        if uid not in self._allowed:
            raise Refused(f"uid {uid} may not ask for device commands")
        try:
            raw = _read_request(conn, self._read_timeout_s)
        except TimeoutError:
            raise Refused(f"no complete request within {self._read_timeout_s:.0f} s") from None
        except OSError as exc:
            raise Refused(f"the request could not be read: {exc.strerror}") from None
        try:
            request = decode_request(raw)
        except ValueError as exc:
            raise Refused(f"malformed request: {exc}") from None
        path = _device(request.device, self._sys_root, self._proc_root)
        log.info("purge_helper_request", op=request.op, device=str(path), method=request.method)
        try:
            return self._run(request, path)
        except OSError as exc:  # the device or the tool failed: the daemon records it
            what = f"{request.op} {request.method}".rstrip()
            return HelperReply(errno=exc.errno or errno.EIO, error=f"{what}: {exc.strerror or exc}")

    def _run(self, request: HelperRequest, path: Path) -> HelperReply:
        if request.op == "probe":
            return HelperReply(probe=self._purger.probe_path(path))
        try:
            method = PurgeMethod(request.method)
        except ValueError:
            raise Refused(f"unknown purge method {request.method!r}") from None
        if request.op == "progress":
            return HelperReply(progress=self._purger.progress_path(path, method))
        if method.value.startswith("nvme-"):
            self._refuse_if_others_in_use(path, method)
        try:
            said = self._purger.issue_path(path, method, request.secret, request.timeout_s)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        return HelperReply(said=said)

    def _refuse_if_others_in_use(self, path: Path, method: PurgeMethod) -> None:
        """A sanitize erases every namespace of the controller, and so does a format on a
        controller that formats them all together: not while another one is in use."""
        found = self._purger.probe_path(path)
        nvme = found.capabilities.nvme
        whole = method.background or nvme is None or nvme.format_all_namespaces
        if whole and found.others_in_use:
            raise Refused(f"{method.value} would also erase {found.others_in_use}")


def allowed_uids(user: str) -> frozenset[int]:
    """Root and the daemon's user (by name, or a number)."""
    if user.isdigit():
        return frozenset({0, int(user)})
    try:
        return frozenset({0, pwd.getpwnam(user).pw_uid})
    except KeyError:
        return frozenset({0})
