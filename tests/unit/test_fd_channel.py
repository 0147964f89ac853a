"""The descriptor side channel: a token is good once, for the uid that passed the
descriptor, until it expires; nothing is held without a descriptor."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from mfpsecd.base.admission import AdmissionRules
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink.fd_channel import TOKEN_TTL_S, FdChannel
from tests.support.fakeclock import FakeClock


def _send(path: Path, fds: list[int]) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        socket.send_fds(sock, [b"F"], fds)
        return sock.makefile("rb").readline().decode().strip()


def test_tokens_are_single_use_per_uid_and_expire(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        channel = FdChannel(AdmissionRules(os.getuid(), frozenset(), frozenset()), clock)
        path = tmp_path / "x.fd.sock"
        channel.listen(path, None)
        assert path.stat().st_mode & 0o777 == 0o660
        r, w = os.pipe()
        try:
            token = await asyncio.to_thread(_send, path, [w])
            assert len(token) == 32
            with pytest.raises(MfpsecError) as info:
                channel.take(token, os.getuid() + 1)  # another uid
            assert info.value.code is ErrorCode.INVALID_PARAMETER
            fd = channel.take(token, os.getuid())
            os.write(fd, b"through the passed descriptor")
            os.close(fd)
            assert os.read(r, 100) == b"through the passed descriptor"
            with pytest.raises(MfpsecError):
                channel.take(token, os.getuid())  # used
            late = await asyncio.to_thread(_send, path, [w])
            await clock.advance(TOKEN_TTL_S + 1)
            with pytest.raises(MfpsecError):
                channel.take(late, os.getuid())
            assert await asyncio.to_thread(_send, path, []) == "!refused"
        finally:
            channel.close()
            os.close(r)
            os.close(w)
        assert not path.exists()

    asyncio.run(scenario())
