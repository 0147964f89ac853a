"""A real rsyslogd receiving RFC 5425 (TLS, octet counting) on a loopback port and writing
each message's raw text to a file, one per line. Started and stopped by the test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.pki import TestPki

requires_rsyslog = pytest.mark.skipif(
    shutil.which("rsyslogd") is None, reason="rsyslog is not installed (make setup installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rsyslog:
    def __init__(
        self, directory: Path, pki: TestPki, port: int | None = None, *, auth_mode: str = "anon"
    ) -> None:
        """auth_mode: anon, or x509/certvalid to require a client certificate from the
        test CA (mutual TLS)."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        self.port = port or free_port()
        self.output = self.dir / "received.log"
        self.conf = self.dir / "rsyslog.conf"
        self.conf.write_text(f"""
global(workDirectory="{self.dir / "work"}" net.enableDNS="off"
       defaultNetstreamDriver="ossl"
       defaultNetstreamDriverCAFile="{pki.ca}"
       defaultNetstreamDriverCertFile="{pki.cert}"
       defaultNetstreamDriverKeyFile="{pki.key}")
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"
       streamDriver.authMode="{auth_mode}")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="siem") {{
  action(type="omfile" file="{self.output}" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="siem")
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(self.conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "rsyslogd.err", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError((self.dir / "rsyslogd.err").read_text()) from None
                time.sleep(0.05)
        raise AssertionError("rsyslogd did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines() if self.output.exists() else []
