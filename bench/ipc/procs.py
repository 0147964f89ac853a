"""Building the C programs and starting/stopping the servers of the ipc suite."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench import ROOT

HERE = Path(__file__).resolve().parent
BIN_DIR = HERE / "bin"
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-pthread")
PIN = ("taskset", "-c", "0")

GET_STATUS = b'{"method":"io.mfpsecd.System.GetStatus"}\0'


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- C programs


@dataclass(frozen=True)
class Program:
    name: str
    sources: tuple[str, ...]  # compiled
    headers: tuple[str, ...] = ()  # only for the staleness check
    pkgs: tuple[str, ...] = ()  # pkg-config packages


PROGRAMS = (
    Program("loadgen", ("loadgen.c", "driver.c"), ("driver.h",)),
    Program("echo_server", ("echo_server.c",)),
    Program("dbusgen", ("dbusgen.c", "driver.c"), ("driver.h",), ("dbus-1",)),
)


def build(program: Program) -> Path:
    """Compile into bench/ipc/bin/ when the binary is missing or older than a source."""
    out = BIN_DIR / program.name
    inputs = [HERE / s for s in (*program.sources, *program.headers)]
    if out.exists() and out.stat().st_mtime >= max(p.stat().st_mtime for p in inputs):
        return out
    BIN_DIR.mkdir(exist_ok=True)
    flags: list[str] = []
    libs: list[str] = []
    for pkg in program.pkgs:
        flags += _pkg_config("--cflags", pkg)
        libs += _pkg_config("--libs", pkg)
    tmp = out.with_name(f".{program.name}.tmp")
    cmd = [
        "cc",
        *CFLAGS,
        *flags,
        "-o",
        str(tmp),
        *(str(HERE / s) for s in program.sources),
        *libs,
        "-lm",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"compiling {program.name} failed:\n{' '.join(cmd)}\n{done.stderr}")
    os.replace(tmp, out)  # never leave a half-written binary under the real name
    return out


def _pkg_config(what: str, pkg: str) -> list[str]:
    done = subprocess.run(["pkg-config", what, pkg], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(
            f"pkg-config {what} {pkg}: {done.stderr.strip()} (`make setup` installs libdbus-1-dev)"
        )
    return done.stdout.split()


def build_all() -> dict[str, Path]:
    return {p.name: build(p) for p in PROGRAMS}


# ---------------------------------------------------------------- processes


class Server:
    """A server subprocess: stdout is a pipe (for its ready line), stderr goes to a log."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        pinned: bool = False,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.argv = [*PIN, *argv] if pinned else list(argv)
        self._log_file: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
        self._pending = b""
        self.exit_status: int | None = None

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.name} exited with status {self.proc.returncode}; "
                f"log {self.log}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def read_line(self, timeout: float = 20.0) -> str:
        """The next stdout line (a ready line or an address), without blocking forever."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(
                    f"{self.name}: no output within {timeout:g} s; log:\n{self.log_tail()}"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait(5)
                self.check_alive()
                raise BenchError(f"{self.name} closed its stdout")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode().strip()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 5 s; → the exit status (negative: killed by a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log_file.close()
        self.exit_status = self.proc.returncode
        return self.exit_status


def varlink_call(path: Path, request: bytes = GET_STATUS, timeout: float = 5.0) -> bytes:
    """One NUL-framed call → the reply without its NUL."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(request)
        buf = b""
        while not buf.endswith(b"\0"):
            chunk = s.recv(65536)
            if not chunk:
                raise BenchError(f"{path}: connection closed before the reply")
            buf += chunk
    return buf[:-1]


def wait_answering(server: Server, path: Path, timeout: float = 30.0) -> bytes:
    """Poll until the socket answers GetStatus; → the reply."""
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        try:
            return varlink_call(path)
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{server.name} did not answer on {path} within {timeout:g} s; "
                    f"log:\n{server.log_tail()}"
                ) from None
            time.sleep(0.05)


# ---------------------------------------------------------------- our daemon


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list) and not any(isinstance(x, dict) for x in v):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as a TOML value")


def dump_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """The TOML subset our config and board files use: tables, arrays of tables, scalars."""
    plain = {k: v for k, v in doc.items() if not _is_table(v)}
    out = [f"{k} = {_toml_value(v)}" for k, v in plain.items()]
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out += ["", f"[{name}]", dump_toml(v, f"{name}.").strip()]
        elif _is_table(v):
            for item in v:
                out += ["", f"[[{name}]]", dump_toml(item, f"{name}.").strip()]
    return "\n".join(out).strip() + "\n"


def _is_table(v: Any) -> bool:
    return isinstance(v, dict) or (
        isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
    )


def prime_editable_install() -> None:
    """Import the package once, alone: the editable install rebuilds the native extension on
    import when sources changed, and daemons starting mid-rebuild fail to import."""
    done = subprocess.run(
        [sys.executable, "-c", "import mfpsecd._native"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise BenchError(f"cannot import mfpsecd (editable rebuild failed?):\n{done.stderr}")


def write_sim_board(workdir: Path) -> tuple[Path, Path]:
    """A copy of the simulated board under workdir; → (config file, board file)."""
    workdir.mkdir(parents=True)
    board = tomllib.loads((ROOT / "hw" / "sim.toml").read_text())
    board["board"]["name"] = "bench"
    board["paths"] = {
        key: str(workdir / sub)
        for key, sub in (
            ("state_dir", "lib"),
            ("run_dir", "run"),
            ("dev_root", "dev"),
            ("sys_root", "sys"),
        )
    }
    # The board file moves to workdir: keep its firmware trust roots pointing into hw/.
    firmware = board["firmware"]
    firmware["roots"] = [str((ROOT / "hw" / root).resolve()) for root in firmware["roots"]]
    board_file = workdir / "bench.toml"
    board_file.write_text(dump_toml(board))

    config = tomllib.loads((ROOT / "hw" / "mfpsecd.sim.toml").read_text())
    config["daemon"].update(board="bench", board_dir=str(workdir), log_level="warning")
    config.setdefault("ipc", {})["max_connections"] = 64
    config_file = workdir / "mfpsecd.toml"
    config_file.write_text(dump_toml(config))
    return config_file, board_file


def start_daemon(workdir: Path, *, pinned: bool) -> tuple[Server, Path, bytes]:
    """Our daemon on a copy of the simulated board under workdir; → (server, socket, reply)."""
    config_file, board_file = write_sim_board(workdir)
    exe = Path(sys.executable).parent / "mfpsecd"
    if not exe.exists():
        found = shutil.which("mfpsecd")
        if found is None:
            raise BenchError("mfpsecd is not installed in the venv (run `make setup`)")
        exe = Path(found)
    server = Server(
        "mfpsecd" + (" (pinned)" if pinned else ""),
        [str(exe), "run", "--config", str(config_file), "--board", str(board_file)],
        workdir / "daemon.log",
        pinned=pinned,
        cwd=workdir,
    )
    sock = workdir / "run" / "mfpsecd.sock"
    reply = wait_answering(server, sock)
    return server, sock, reply
