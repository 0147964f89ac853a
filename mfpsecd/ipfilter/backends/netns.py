"""Work inside a named network namespace from one dedicated thread.

A socket belongs to the namespace it was created in, and setns(CLONE_NEWNET) moves only
the calling thread: so each backend that talks to the kernel's network stack for the
board (nftables, rtnetlink) gets a single worker thread that enters the board's namespace
once, creates its sockets there and runs every call. The simulated board names its
namespace; a device uses the daemon's own (no setns at all).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import os
import socket
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import TypeVar

from mfpsecd.base.errors import ErrorCode, MfpsecError

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def enter(name: str, netns_dir: Path = NETNS_DIR) -> None:
    """Move the calling thread into the named namespace (`ip netns add NAME`)."""
    fd = os.open(netns_dir / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsWorker:
    """One thread, in the namespace, for every call of one backend."""

    def __init__(self, netns: str | None, name: str) -> None:
        self.netns = netns
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=name, initializer=self._init
        )
        self._failed: OSError | None = None

    def _init(self) -> None:
        if self.netns is not None:
            try:
                enter(self.netns)
            except OSError as exc:
                self._failed = exc

    def _run(self, fn: Callable[[], T]) -> T:
        if self._failed is not None:
            raise MfpsecError(
                ErrorCode.NETWORK_UNAVAILABLE,
                reason=f"network namespace {self.netns}: {self._failed}",
            )
        return fn()

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, fn)

    def call_sync(self, fn: Callable[[], T]) -> T:
        return self._pool.submit(self._run, fn).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


async def bursts(
    sock: socket.socket, matters: Callable[[bytes], bool]
) -> AsyncGenerator[None, None]:
    """Yields after each burst of netlink messages on a non-blocking subscribed socket
    (read by the event loop: the socket keeps the namespace it was created in) in which
    one message matters; lost messages (ENOBUFS) count as mattering. Closes the socket."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(sock.fileno(), ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            found = False
            while True:  # drain: one look covers the whole burst
                try:
                    data = sock.recv(1 << 16)
                except BlockingIOError:
                    break
                except OSError:  # ENOBUFS: messages were lost; looking again covers it
                    found = True
                    break
                if not data:
                    break
                found = found or matters(data)
            if found:
                yield None
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
