"""A throwaway two-namespace network for IP-filter tests: the device ("dut") and a peer
joined by a veth pair, with real TCP and UDP servers on the device and probes sent from
chosen source addresses of the peer. Nothing touches the host's own namespace.

    dut:  lan0  10.7.1.1/16   2001:db8:7:1::1/48
    peer: eth0  10.7.{1,2,3,4}.50/16   2001:db8:7:{1,2,3,4}::50/48
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TCP_PORTS = (80, 631, 9100)
UDP_PORTS = (161,)
SOURCES = tuple(
    ipaddress.ip_address(a)
    for a in (
        "10.7.1.50",
        "10.7.2.50",
        "10.7.3.50",
        "10.7.4.50",
        "2001:db8:7:1::50",
        "2001:db8:7:2::50",
        "2001:db8:7:3::50",
        "2001:db8:7:4::50",
    )
)
DUT4, DUT6 = ipaddress.ip_address("10.7.1.1"), ipaddress.ip_address("2001:db8:7:1::1")

requires_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2 (CI runs as root)",
)

# Echo servers on every port, dual-stack; prints "ready" once all listen.
_SERVERS = """
import socket, sys, threading
tcp, udp = [int(p) for p in sys.argv[1].split(",")], [int(p) for p in sys.argv[2].split(",")]
def serve_tcp(port):
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", port)); s.listen(512)
    ready.append(port)
    while True:
        c, _ = s.accept(); c.close()
def serve_udp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", port))
    ready.append(port)
    while True:
        data, a = s.recvfrom(2048); s.sendto(data, a)
ready = []
for p in tcp: threading.Thread(target=serve_tcp, args=(p,), daemon=True).start()
for p in udp: threading.Thread(target=serve_udp, args=(p,), daemon=True).start()
import time
while len(ready) < len(tcp) + len(udp): time.sleep(0.01)
print("ready", flush=True)
sys.stdin.read()
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


@dataclass(frozen=True)
class Probe:
    source: str
    proto: str
    port: int
    target: str = ""  # default: the device's address of the source's family


@dataclass
class Lab:
    dut: str
    peer: str
    servers: subprocess.Popen[str]

    def in_dut(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.dut, *args, check=check)

    def in_peer(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.peer, *args, check=check)

    def probe(self, probes: Sequence[Probe], timeout: float = 0.4) -> list[bool]:
        """Each probe's outcome: did a connection (TCP) or an echo (UDP) get through."""
        doc = json.dumps([p.__dict__ for p in probes])
        r = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.peer,
                sys.executable,
                "-m",
                "tests.support.netprobe",
                str(timeout),
            ],
            input=doc,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=ROOT,
        )
        results: list[bool] = json.loads(r.stdout)
        return results

    def prober(self, source: str, port: int, timeout: float) -> subprocess.Popen[str]:
        """Connects again and again until stdin closes; prints the counts."""
        return subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.peer,
                sys.executable,
                "-m",
                "tests.support.netprobe",
                str(timeout),
                "--loop",
                source,
                str(port),
                str(DUT4 if "." in source else DUT6),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    tag = secrets.token_hex(3)
    dut, peer = f"mfpdut{tag}", f"mfppeer{tag}"
    sh("ip", "netns", "add", dut)
    sh("ip", "netns", "add", peer)
    servers: subprocess.Popen[str] | None = None
    try:
        sh(
            "ip",
            "link",
            "add",
            f"v{tag}a",
            "netns",
            dut,
            "type",
            "veth",
            "peer",
            "name",
            f"v{tag}b",
            "netns",
            peer,
        )
        sh("ip", "-n", dut, "link", "set", f"v{tag}a", "name", "lan0")
        sh("ip", "-n", peer, "link", "set", f"v{tag}b", "name", "eth0")
        for ns, dev in ((dut, "lan0"), (peer, "eth0")):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.accept_dad=0")
        # Removing the first address of a subnet keeps the others (the quick-filter test).
        sh("ip", "netns", "exec", dut, "sysctl", "-qw", "net.ipv4.conf.lan0.promote_secondaries=1")
        sh("ip", "-n", dut, "addr", "add", "10.7.1.1/16", "dev", "lan0")
        sh("ip", "-n", dut, "addr", "add", "2001:db8:7:1::1/48", "dev", "lan0", "nodad")
        for s in SOURCES:
            sh(
                "ip",
                "-n",
                peer,
                "addr",
                "add",
                f"{s}/{16 if s.version == 4 else 48}",
                "dev",
                "eth0",
                *(["nodad"] if s.version == 6 else []),
            )
        servers = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                dut,
                sys.executable,
                "-c",
                _SERVERS,
                ",".join(map(str, TCP_PORTS)),
                ",".join(map(str, UDP_PORTS)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert servers.stdout is not None and servers.stdout.readline().strip() == "ready"
        lab_ = Lab(dut, peer, servers)
        _wait_reachable(lab_)
        yield lab_
    finally:
        if servers is not None:
            servers.kill()
            servers.wait()
        sh("ip", "netns", "del", peer, check=False)
        sh("ip", "netns", "del", dut, check=False)


def _wait_reachable(lab_: Lab) -> None:
    """Neighbour discovery settles before the first real probe."""
    deadline = time.monotonic() + 10
    probes = [Probe(str(s), "tcp", 80) for s in SOURCES]
    while not all(lab_.probe(probes, timeout=1.0)):
        assert time.monotonic() < deadline, "the lab network did not come up"


def dut_board(lab: Lab) -> dict[str, Any]:
    """The board profile's interfaces for a daemon in the lab's device namespace."""
    return {
        "nics": [
            {"name": "lan0", "kind": "wired", "netns": lab.dut},
            {"name": "wlan0", "kind": "wireless", "netns": lab.dut},
        ]
    }
