"""A real ClamAV daemon for a test: its own socket, a signature database the test builds
(no download: this machine has no internet), its scratch space on a tmpfs, started and
stopped by the test. The database holds two signatures: the EICAR test file by hash
(`.hdb`) and a body signature of our own (`.ndb`) that matches anywhere in a stream."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The EICAR anti-virus test file (https://www.eicar.org): harmless, known to every scanner.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
BODY = b"MFPSEC-TEST-VIRUS-BODY-7f3a"  # our own signature: matched inside any stream
EICAR_NAME = "Eicar-Test-Signature.UNOFFICIAL"  # clamd names a local signature so
BODY_NAME = "Mfpsec.Test.Body.UNOFFICIAL"

requires_clamd = pytest.mark.skipif(
    shutil.which("clamd") is None, reason="clamd is not installed (make setup installs it)"
)


@dataclass
class Clamd:
    socket: str
    proc: subprocess.Popen[bytes]
    stream_max: int

    def pause(self) -> None:
        """A clamd that stops answering (slow, or hung): SIGSTOP."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _database(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "mfpsec-test.hdb").write_text(
        f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Eicar-Test-Signature\n"
    )
    (directory / "mfpsec-test.ndb").write_text(f"Mfpsec.Test.Body:0:*:{BODY.hex()}\n")


@contextlib.contextmanager
def clamd(root: Path, *, stream_max: int = 1 << 20) -> Iterator[Clamd]:
    """A clamd on root/clamd.sock (root: short, a socket path has 108 bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    _database(root / "db")
    scratch = Path(tempfile.mkdtemp(prefix="clamd-", dir="/dev/shm"))  # a tmpfs
    sock = root / "clamd.sock"
    conf = root / "clamd.conf"
    conf.write_text(
        "Foreground yes\n"
        f"LocalSocket {sock}\n"
        "LocalSocketMode 660\n"
        f"DatabaseDirectory {root / 'db'}\n"
        f"TemporaryDirectory {scratch}\n"
        f"StreamMaxLength {stream_max}\n"
        f"PidFile {root / 'clamd.pid'}\n"
        "SelfCheck 0\n"
        "AlertExceedsMax yes\n"  # content past its scan limits is not "OK"
    )
    log = (root / "clamd.log").open("wb")
    proc = subprocess.Popen(["clamd", "-c", str(conf)], stdout=log, stderr=log)
    c = Clamd(str(sock), proc, stream_max)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (root / "clamd.log").read_text()
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))
                s.sendall(b"zPING\0")
                if s.recv(16) == b"PONG\0":
                    break
            assert time.monotonic() < deadline, "clamd did not start"
            time.sleep(0.1)
        yield c
    finally:
        c.stop()
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
