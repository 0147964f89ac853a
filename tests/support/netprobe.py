"""Probes run inside the peer namespace (see netlab).

python -m tests.support.netprobe TIMEOUT < probes.json   → [true, false, ...]
python -m tests.support.netprobe TIMEOUT --loop SOURCE PORT TARGET
    connect again and again until stdin closes → {"ok": N, "refused": M}
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import sys
import threading
from typing import Any

DUT = {4: "10.7.1.1", 6: "2001:db8:7:1::1"}


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


async def tcp(source: str, target: str, port: int, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    s = socket.socket(_family(source), socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.bind((source, 0))
        await asyncio.wait_for(loop.sock_connect(s, (target, port)), timeout)
        return True
    except (TimeoutError, OSError):
        return False
    finally:
        s.close()


async def udp(source: str, target: str, port: int, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    s = socket.socket(_family(source), socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        s.bind((source, 0))
        await loop.sock_sendto(s, b"probe", (target, port))
        data = await asyncio.wait_for(loop.sock_recv(s, 64), timeout)
        return data == b"probe"
    except (TimeoutError, OSError):
        return False
    finally:
        s.close()


async def matrix(probes: list[dict[str, Any]], timeout: float) -> list[bool]:
    jobs = []
    for p in probes:
        target = p.get("target") or DUT[ipaddress.ip_address(p["source"]).version]
        fn = tcp if p["proto"] == "tcp" else udp
        jobs.append(fn(p["source"], target, p["port"], timeout))
    return list(await asyncio.gather(*jobs))


async def loop_until_eof(source: str, port: int, target: str, timeout: float) -> dict[str, int]:
    done = threading.Event()

    def wait_eof() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_eof, daemon=True).start()
    counts = {"ok": 0, "refused": 0}
    while not done.is_set():
        counts["ok" if await tcp(source, target, port, timeout) else "refused"] += 1
    return counts


def main() -> None:
    timeout = float(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "--loop":
        source, port, target = sys.argv[3], int(sys.argv[4]), sys.argv[5]
        print(json.dumps(asyncio.run(loop_until_eof(source, port, target, timeout))))
        return
    print(json.dumps(asyncio.run(matrix(json.load(sys.stdin), timeout))))


if __name__ == "__main__":
    main()
