"""The MediaPurger port through the purge helper (`mfpsecd-purge.socket`): the device
commands and the privileged reads run in the helper, with the capabilities the daemon
does not hold; the read-back, which needs only the disk group, stays here."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from mfpsecd.wipe.backends.helper_messages import (
    MAX_REPLY,
    HelperReply,
    HelperRequest,
    decode_reply,
    encode_request,
)
from mfpsecd.wipe.backends.media_probe import probe
from mfpsecd.wipe.backends.media_purge import read_blocks
from mfpsecd.wipe.model.purge_plan import PurgeMethod
from mfpsecd.wipe.ports import DeviceProgress, MediaInfo, MediaProbe

# Beyond a command's own time: the helper's start (a Python process) and a probe.
_MARGIN_S = 30.0


class HelperPurger:
    """Blocking calls (the port's contract): one connection per call."""

    def __init__(self, socket_path: Path) -> None:
        self._socket = socket_path

    def _ask(self, request: HelperRequest, timeout_s: float) -> HelperReply:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
                s.settimeout(timeout_s)
                s.connect(str(self._socket))
                s.sendall(encode_request(request))
                s.shutdown(socket.SHUT_WR)
                data = bytearray()
                while chunk := s.recv(65536):
                    data += chunk
                    if len(data) > MAX_REPLY:
                        raise OSError(errno.EMSGSIZE, "purge helper: the reply is too large")
        except TimeoutError:
            raise OSError(
                errno.ETIMEDOUT, f"purge helper at {self._socket}: no reply in {timeout_s:.0f} s"
            ) from None
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise
            raise OSError(
                exc.errno or errno.EIO, f"purge helper at {self._socket}: {exc.strerror or exc}"
            ) from None
        reply = decode_reply(bytes(data))  # ValueError: the port's "could not be read"
        if reply.refused:
            raise OSError(errno.EPERM, f"purge helper refused: {reply.refused}")
        if reply.errno:
            raise OSError(reply.errno, reply.error)
        return reply

    def probe(self, info: MediaInfo) -> MediaProbe:
        if info.path.is_file():  # an image file: nothing to ask, nothing privileged
            return probe(info.path)
        reply = self._ask(HelperRequest("probe", str(info.path)), _MARGIN_S)
        if reply.probe is None:
            raise ValueError("purge helper: a probe reply without the probe")
        return reply.probe

    def read_blocks(
        self, info: MediaInfo, offsets: Iterable[int], block: int
    ) -> Iterator[tuple[int, bytes]]:
        return read_blocks(info.path, offsets, block)

    def issue(self, info: MediaInfo, method: PurgeMethod, secret: str, timeout_s: float) -> str:
        request = HelperRequest("issue", str(info.path), method.value, secret, timeout_s)
        return self._ask(request, timeout_s + _MARGIN_S).said

    def progress(self, info: MediaInfo, method: PurgeMethod) -> DeviceProgress | None:
        reply = self._ask(HelperRequest("progress", str(info.path), method.value), _MARGIN_S)
        return reply.progress
