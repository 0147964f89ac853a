"""The simulated board's TPM: a swtpm process the daemon starts and stops itself.

Its state lives under the daemon's state directory, so keys survive a restart. The TCP
ports are picked free at start (swtpm's control channel is always data port + 1) and a
start that loses the race for them is retried with others, so parallel test runs and
several simulated boards on one machine do not collide. swtpm is bound to loopback and
dies with the daemon (setpriv --pdeathsig) even if the daemon is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from pathlib import Path

import structlog

from mfpsecd.base.errors import ErrorCode, MfpsecError

log = structlog.get_logger("mfpsecd.swtpm")

HOST = "127.0.0.1"
_ATTEMPTS = 8
_READY_TIMEOUT_S = 5.0


def _free_port_pair() -> int:
    """A port N with N and N+1 both free on loopback right now."""
    for _ in range(64):
        with socket.socket() as a:
            a.bind((HOST, 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind((HOST, port + 1))
                except OSError:
                    continue
            return int(port)
    raise MfpsecError(ErrorCode.TPM_FAILED, command="swtpm start", code="no free port pair")


class SwtpmProcess:
    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self._proc: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def tcti(self) -> str:
        return f"swtpm:host={HOST},port={self.port}"

    async def start(self) -> str:
        binary = shutil.which("swtpm")
        if binary is None:
            raise MfpsecError(
                ErrorCode.TPM_FAILED,
                command="swtpm start",
                code="swtpm is not installed (make setup installs it)",
            )
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(_ATTEMPTS):
            port = _free_port_pair()
            proc = await asyncio.create_subprocess_exec(
                "setpriv",
                "--pdeathsig",
                "TERM",
                "--",
                binary,
                "socket",
                "--tpm2",
                "--server",
                f"type=tcp,port={port},bindaddr={HOST}",
                "--ctrl",
                f"type=tcp,port={port + 1},bindaddr={HOST}",
                "--tpmstate",
                f"dir={self._dir},mode=0600",
                "--flags",
                "not-need-init,startup-clear",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # Its own session: a Ctrl-C at the terminal reaches the daemon, which flushes
                # its keys and then stops swtpm, not both at once.
                start_new_session=True,
            )
            if await self._wait_ready(proc, port):
                self._proc, self.port = proc, port
                log.info("swtpm_started", pid=proc.pid, port=port, state=str(self._dir))
                return self.tcti
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        raise MfpsecError(
            ErrorCode.TPM_FAILED,
            command="swtpm start",
            code=f"did not start after {_ATTEMPTS} attempts",
        )

    @staticmethod
    async def _wait_ready(proc: asyncio.subprocess.Process, port: int) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READY_TIMEOUT_S
        while loop.time() < deadline:
            if proc.returncode is not None:
                return False  # lost the port race, or refused its state: try again
            try:
                _, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        return False

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.info("swtpm_stopped", status=proc.returncode)
