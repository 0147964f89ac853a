"""Start a daemon, wait until it says it is ready, let it settle, read what it holds."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench import Metrics
from bench.ipc.procs import BenchError


def memory(pid: int) -> Metrics:
    """VmRSS, VmHWM, RssAnon (private heap and stacks) and PSS (MiB); the shared libraries
    mapped."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM|RssAnon):\s+(\d+) kB", status, re.M)}
    # PSS: shared pages (libraries other processes map too) counted by their share.
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    pss = int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))  # type: ignore[union-attr]
    libs = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and ".so" in parts[-1]:
            libs.add(parts[-1])
    return {
        "rss": kib["VmRSS"] / 1024,
        "hwm": kib["VmHWM"] / 1024,
        "anon": kib["RssAnon"] / 1024,
        "pss": pss / 1024,
        "libs": float(len(libs)),
    }


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A $NOTIFY_SOCKET to hear READY=1 on, as systemd would."""
    with tempfile.TemporaryDirectory(prefix="mfp-fp-") as d:
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        try:
            yield path, sock
        finally:
            sock.close()


def wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the daemon exited ({proc.returncode}) before it was ready")
        sock.settimeout(max(0.01, min(0.5, deadline - time.monotonic())))
        try:
            msg = sock.recv(4096).decode(errors="replace")
        except TimeoutError:
            continue
        if "READY=1" in msg.split("\n"):
            return
    raise BenchError("no READY=1 within the timeout")


def wait_line(log: Path, proc: subprocess.Popen[bytes], text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args!r} exited ({proc.returncode}): {log.read_text()[-500:]}")
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise BenchError(f"{text!r} not seen within {timeout:g} s: {log.read_text()[-500:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def find_child(proc: subprocess.Popen[bytes], name: str) -> int:
    """The pid of the process called name: proc itself, or one it started (unshare)."""
    for _ in range(100):
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
        for pid in (int(p) for p in out.stdout.split()):
            if pid == proc.pid or _descends(pid, proc.pid):
                return pid
        time.sleep(0.05)
    raise BenchError(f"no {name} process under {proc.pid}")


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
    return False


def popen(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
