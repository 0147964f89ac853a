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

import contextlib
import errno
import os
import pwd
import socket
import stat
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import structlog

from mfpsecd.wipe.backends.disks import block_in_use, block_node, is_partition
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
_DRAIN_S = 2.0  # after the reply: what a refused caller may still send, and for how long


class Refused(Exception):
    """The request is not carried out, and why (said to the caller)."""


def _peer_uid(conn: socket.socket) -> int:
    _pid, uid, _gid = _CRED.unpack(
        conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
    )
    return int(uid)


def _recv_by(conn: socket.socket, deadline: float, size: int) -> bytes:
    """One read that must come before deadline (monotonic): a caller trickling a byte
    at a time cannot stretch the whole exchange beyond it."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    conn.settimeout(left)
    return conn.recv(size)


def _read_request(conn: socket.socket, deadline: float) -> bytes:
    """Up to MAX_REQUEST bytes until the caller shuts down its side, all before deadline."""
    data = bytearray()
    while len(data) <= MAX_REQUEST:
        chunk = _recv_by(conn, deadline, MAX_REQUEST + 1 - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
    raise Refused(f"the request is larger than {MAX_REQUEST} bytes")


def _drain(conn: socket.socket, deadline: float) -> None:
    """Read what a refused caller still sends (bounded in bytes and time): closing a
    Unix socket with unread data resets it, and the caller would lose the reply that
    says why it was refused."""
    left = _DRAIN_LIMIT
    with contextlib.suppress(OSError):  # TimeoutError included: then it is cut off
        while left > 0 and (chunk := _recv_by(conn, deadline, min(left, 65536))):
            left -= len(chunk)


def _whole_disk(path_text: str, sys_root: Path) -> tuple[Path, int]:
    """The device node the request names, resolved (a link anywhere leads to the node
    itself, which is what is then opened), as (path, rdev): a whole disk under /dev,
    not a partition, not a virtual device other than a loop (device-mapper, RAID,
    zram: sanitize the disks beneath them)."""
    if not path_text.startswith("/dev/"):
        raise Refused(f"{path_text!r} is not a device node under /dev")
    try:
        real = Path(os.path.realpath(path_text))
        st = os.stat(real)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise Refused(f"{path_text!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if real.parent != Path("/dev"):
        raise Refused(f"{path_text!r} is not a device node under /dev")
    if not stat.S_ISBLK(st.st_mode):
        raise Refused(f"{real} is not a block device")
    node = block_node(st.st_rdev, sys_root)
    if is_partition(node):
        raise Refused(f"{real} is a partition: only whole disks are sanitized")
    if "/devices/virtual/" in str(node) and not node.name.startswith("loop"):
        raise Refused(f"{real} is a virtual block device: sanitize the disks beneath it")
    return real, st.st_rdev


@contextlib.contextmanager
def _claimed(path: Path, rdev: int, sys_root: Path, proc_root: Path) -> Iterator[None]:
    """The disk held exclusively (O_EXCL) for as long as a command runs: the kernel
    refuses it while anything has it mounted, in swap or claimed (btrfs and other mount
    namespaces included), and refuses to mount it while we hold it. The fresh check of
    mounts and holders comes first, to say what holds it."""
    why = block_in_use(rdev, sys_root=sys_root, proc_root=proc_root)
    if why:
        raise Refused(f"{path} is {why}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise Refused(f"{path} is in use (mounted, in swap or claimed)") from None
        raise
    try:
        if os.fstat(fd).st_rdev != rdev:
            raise Refused(f"{path} changed while it was checked")
        yield
    finally:
        os.close(fd)


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
        deadline = time.monotonic() + self._read_timeout_s
        try:
            reply = self._answer(conn, deadline)
        except Refused as exc:
            log.warning("purge_helper_refused", reason=str(exc))
            reply = HelperReply(refused=str(exc))
        except Exception as exc:  # a bug: the caller still hears of it, the journal too
            log.exception("purge_helper_failed")
            reply = HelperReply(errno=errno.EIO, error=f"purge helper: {type(exc).__name__}")
        try:
            conn.settimeout(self._read_timeout_s)
            conn.sendall(encode_reply(reply))
            conn.shutdown(socket.SHUT_WR)
        except OSError as exc:
            log.warning("purge_helper_caller_gone", error=str(exc))
            return
        _drain(conn, min(deadline, time.monotonic() + _DRAIN_S))

    def _answer(self, conn: socket.socket, deadline: float) -> HelperReply:
        uid = _peer_uid(conn)
        if uid not in self._allowed:
            raise Refused(f"uid {uid} may not ask for device commands")
        try:
            raw = _read_request(conn, deadline)
        except TimeoutError:
            raise Refused(f"no complete request within {self._read_timeout_s:.0f} s") from None
        except OSError as exc:
            raise Refused(f"the request could not be read: {exc.strerror}") from None
        try:
            request = decode_request(raw)
        except ValueError as exc:
            raise Refused(f"malformed request: {exc}") from None
        path, rdev = _whole_disk(request.device, self._sys_root)
        log.info("purge_helper_request", op=request.op, device=str(path), method=request.method)
        try:
            return self._run(request, path, rdev)
        except OSError as exc:  # the device or the tool failed: the daemon records it
            what = f"{request.op} {request.method}".rstrip()
            return HelperReply(errno=exc.errno or errno.EIO, error=f"{what}: {exc.strerror or exc}")

    def _run(self, request: HelperRequest, path: Path, rdev: int) -> HelperReply:
        # Reads (a probe, a sanitize's progress) change nothing: a mounted disk may be
        # probed (the posture asks whether its drive lock is set).
        if request.op == "probe":
            return HelperReply(probe=self._purger.probe_path(path))
        try:
            method = PurgeMethod(request.method)
        except ValueError:
            raise Refused(f"unknown purge method {request.method!r}") from None
        if request.op == "progress":
            return HelperReply(progress=self._purger.progress_path(path, method))
        if method.value.startswith("ata-security-erase") and not request.secret:
            raise Refused(f"{method.value} needs the job's one-time drive password")
        with _claimed(path, rdev, self._sys_root, self._proc_root):
            if method.value.startswith("nvme-"):
                self._refuse_if_others_in_use(path, method)
            try:
                said = self._purger.issue_path(
                    path, method, request.secret, request.timeout_s, claimed=True
                )
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
