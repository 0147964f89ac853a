"""A real net-snmp master agent (snmpd with an AgentX socket) and trap receiver
(snmptrapd), each in a directory of the test's own, on loopback ports found free, with
SNMPv3 users whose keys use HMAC-SHA-2 and AES: what the fleet-monitoring tests and the
SNMP bench talk to. The IETF base MIBs net-snmp needs to read MFPSEC-MIB are in
tests/data/mibs (Debian ships them only in non-free)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIB_DIRS = f"{ROOT / 'tests' / 'data' / 'mibs'}:{ROOT / 'mfpsecd' / 'snmp'}"
SUBTREE = ".1.3.6.1.4.1.32473.1"
SYSTEM_GROUP = ".1.3.6.1.2.1.1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class V3User:
    name: str
    auth_key: str
    priv_key: str
    auth: str = "SHA-256"
    priv: str = "AES"

    def create(self, engine: str = "") -> str:
        e = f"-e {engine} " if engine else ""
        return (
            f'createUser {e}{self.name} {self.auth} "{self.auth_key}" {self.priv} '
            f'"{self.priv_key}"\n'
        )

    def args(self) -> list[str]:
        return [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            self.name,
            "-a",
            self.auth,
            "-A",
            self.auth_key,
            "-x",
            self.priv,
            "-X",
            self.priv_key,
        ]


READER = V3User("fleet", "Fleet-auth-key-2026", "Fleet-priv-key-2026")
TRAP_USER = V3User("mfptrap", "Trap-auth-key-2026", "Trap-priv-key-2026", auth="SHA-512")


def _wait_for(path: Path, text: str, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text(errors="replace") if path.exists() else ""):
        assert time.monotonic() < deadline, f"{what} did not start: {path.read_text()}"
        time.sleep(0.05)


class Snmptrapd:
    """Informs and traps from user, logged decoded by name with MFPSEC-MIB loaded; engine:
    the sender's engine ID (hex) for traps, none for informs (the receiver's own)."""

    def __init__(self, directory: Path, user: V3User = TRAP_USER, engine: str = "") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self.log = self.dir / "traps.log"
        conf = self.dir / "snmptrapd.conf"
        conf.write_text(user.create(engine) + f"authUser log {user.name} priv\n")
        self.proc = subprocess.Popen(
            [
                "snmptrapd",
                "-f",
                "-C",
                "-c",
                str(conf),
                "-m",
                "MFPSEC-MIB",
                "-Lf",
                str(self.log),
                "-p",
                str(self.dir / "pid"),
                f"udp:127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(self.dir / "persist"),
        )
        _wait_for(self.log, "NET-SNMP version", "snmptrapd")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in (got := self.log.read_text(errors="replace")):
            assert time.monotonic() < deadline, f"no {text!r} in {got}"
            time.sleep(0.1)
        return got

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Snmpd:
    """The master agent: AgentX on a Unix socket in its directory, READER allowed to read
    the MFPSEC-MIB subtree and the system group (and nothing else), informs to a trap
    receiver when given one."""

    def __init__(self, directory: Path, trapd: Snmptrapd | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self.agentx = self.dir / "agentx.sock"
        self.log = self.dir / "snmpd.log"
        lines = [
            "master agentx",
            f"agentXSocket {self.agentx}",
            "agentXPerms 0600 0700",
            READER.create().strip(),
            f"view fleetView included {SUBTREE}",
            f"view fleetView included {SYSTEM_GROUP}",
            f"rouser -s usm {READER.name} priv -V fleetView",
        ]
        if trapd is not None:
            t = TRAP_USER
            lines.append(
                f"trapsess -Ci -v3 -u {t.name} -a {t.auth} -A {t.auth_key} -x {t.priv} "
                f"-X {t.priv_key} -l authPriv udp:127.0.0.1:{trapd.port}"
            )
        (self.dir / "snmpd.conf").write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.log.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                "snmpd",
                "-f",
                "-C",
                "-c",
                str(self.dir / "snmpd.conf"),
                "-Lf",
                str(self.log),
                "-p",
                str(self.dir / "pid"),
                f"udp:127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**_env(self.dir / "persist"), "MIBS": ""},
        )
        _wait_for(self.log, "NET-SNMP version", "snmpd")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)

    def tool(
        self, command: str, *args: str, user: V3User = READER
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                command,
                *user.args(),
                "-m",
                "MFPSEC-MIB",
                "-t",
                "3",
                "-r",
                "1",
                f"127.0.0.1:{self.port}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_env(self.dir / "client"),
        )

    def walk(self, oid: str = SUBTREE) -> dict[str, str]:
        """name.index -> value (enumerations by label, strings unquoted)."""
        r = self.tool("snmpwalk", "-OQs", oid)
        assert r.returncode == 0, r.stderr
        out = {}
        for line in r.stdout.splitlines():
            name, sep, value = line.partition(" = ")
            if sep and not value.startswith("No more variables left"):
                out[name] = value.strip().strip('"')
        return out

    def wait_registered(self, timeout: float = 30.0) -> dict[str, str]:
        """The subtree as soon as the subagent serves it."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.tool("snmpget", "-OQs", f"{SUBTREE}.1.1.1.0")
            if r.returncode == 0 and "No Such" not in r.stdout:
                return self.walk()
            assert time.monotonic() < deadline, (r.stdout, r.stderr, self.log.read_text())
            time.sleep(0.2)


def _env(persist: Path) -> dict[str, str]:
    persist.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "SNMP_PERSISTENT_DIR": str(persist),
        "SNMPCONFPATH": str(persist),  # none of the machine's snmp.conf files
        "MIBDIRS": MIB_DIRS,
        "HOME": str(persist),
    }


def counter(walk: dict[str, str], name: str) -> int:
    return int(re.sub(r"\D", "", walk[name]) or "0")
