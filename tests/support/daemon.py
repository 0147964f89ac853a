"""Start the real daemon as a subprocess on a temporary simulated board.

Readiness is taken from sd_notify (the test binds NOTIFY_SOCKET), exactly as systemd
would see it, so no test sleeps or polls for the socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MFPSECD = [sys.executable, "-m", "mfpsecd.daemon.main"]
MFPSEC = [sys.executable, "-m", "mfpsecd.cli.main"]


def mfpsec(
    socket_path: str,
    *args: str,
    stdin: str | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real CLI against a daemon's socket (env: added to this process's)."""
    return subprocess.run(
        [*MFPSEC, "--socket", socket_path, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def toml_doc(sections: Mapping[str, Mapping[str, Any]]) -> str:
    out = []
    for name, keys in sections.items():
        out.append(f"[{name}]")
        out += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
        out.append("")
    return "\n".join(out)


def write_board(
    root: Path,
    name: str = "testboard",
    tpm: str = "swtpm",
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    usb_ports: Sequence[str] = (),
    disks: Sequence[Mapping[str, Any]] = (),
    nics: Sequence[Mapping[str, Any]] = (),
) -> Path:
    path = root / f"{name}.toml"
    doc: dict[str, dict[str, Any]] = {
        "board": {"name": name, "kind": "simulated", "description": "test board"},
        "paths": {
            "state_dir": str(root / "lib"),
            "run_dir": str(root / "run"),
            "dev_root": str(root / "dev"),
            "sys_root": str(root / "sys"),
        },
        "tpm": {"backend": tpm},
    }
    for section, keys in (extra or {}).items():
        doc[section] = {**doc.get(section, {}), **keys}
    text = toml_doc(doc)
    for i, port in enumerate(usb_ports):
        text += f'\n[[usb_ports]]\nid = "port{i}"\nsysfs_path = {toml_value(port)}\n'
    for kind, items in (("disks", disks), ("nics", nics)):
        for item in items:
            text += f"\n[[{kind}]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in item.items())
    path.write_text(text)
    return path


@dataclass
class DaemonProcess:
    root: Path
    config: Path
    board: Path
    proc: subprocess.Popen[bytes]
    notify: socket.socket
    notifications: list[str] = field(default_factory=list)
    stderr_path: Path | None = None

    @property
    def socket_path(self) -> str:
        return str(self.root / "run" / "mfpsecd.sock")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_notification(self, prefix: str, timeout: float = 20.0) -> str:
        """Block until the daemon sends a sd_notify field starting with prefix."""
        deadline = time.monotonic() + timeout
        for seen in self.notifications:
            if seen.startswith(prefix):
                return seen
        while True:
            exited = self.proc.poll() is not None
            remaining = deadline - time.monotonic()
            # After exit, drain what is queued without blocking, then give up.
            self.notify.settimeout(0 if exited else max(remaining, 0.001))
            try:
                data = self.notify.recv(4096).decode()
            except (TimeoutError, BlockingIOError):
                if exited or remaining <= 0:
                    raise AssertionError(
                        f"no {prefix!r} from daemon (exit={self.proc.poll()}): {self.log()[-2000:]}"
                    ) from None
                continue
            fields = data.split("\n")
            self.notifications += fields
            for f in fields:
                if f.startswith(prefix):
                    return f

    def log(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path else ""

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def close_notify(self) -> None:
        path = Path(self.notify.getsockname())
        self.notify.close()
        with contextlib.suppress(OSError):
            path.unlink()
            path.parent.rmdir()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def start(
    root: Path,
    *,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    argv_prefix: list[str] | None = None,
    preexec: Any = None,
    tpm: str = "swtpm",
    board: Mapping[str, Any] | None = None,
    daemon: Sequence[str] = MFPSECD,
) -> DaemonProcess:
    """A daemon on a test board: a swtpm of its own by default ("none": software keys);
    board: extra arguments for write_board (extra sections, usb_ports, disks); daemon: the
    command that runs mfpsecd (another install's entry point)."""
    root.mkdir(parents=True, exist_ok=True)
    board_path = write_board(root, tpm=tpm, **(board or {}))
    cfg = {"daemon": {"board_dir": str(root), "log_level": "info"}}
    for k, v in (config or {}).items():
        cfg[k] = {**cfg.get(k, {}), **v}
    config_path = root / "mfpsecd.toml"
    config_path.write_text(toml_doc(cfg))
    notify_dir = Path(tempfile.mkdtemp(prefix="mfpsecd-notify-"))
    notify_dir.chmod(0o755)  # some tests run the daemon under another uid
    notify_path = str(notify_dir / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    os.chmod(notify_path, 0o666)
    stderr_path = root / "daemon.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "WATCHDOG_"))}
    full_env.update({"NOTIFY_SOCKET": notify_path, "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    argv = [
        *(argv_prefix or []),
        *daemon,
        "run",
        "--config",
        str(config_path),
        "--board",
        str(board_path),
    ]
    with stderr_path.open("wb") as errf:
        proc = subprocess.Popen(
            argv,
            stdout=errf,
            stderr=errf,
            env=full_env,
            cwd=ROOT,
            preexec_fn=preexec,  # noqa: PLW1509
        )
    d = DaemonProcess(root, config_path, board_path, proc, notify, stderr_path=stderr_path)
    if wait_ready:
        d.wait_notification("READY=1")
    return d


@contextlib.contextmanager
def running(root: Path, **kwargs: Any) -> Iterator[DaemonProcess]:
    d = start(root, **kwargs)
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGTERM)
            try:
                d.proc.wait(20)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()
        d.close_notify()
