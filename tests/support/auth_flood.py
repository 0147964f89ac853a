"""Load generator: a login flood over the daemon's socket, run as its own process so the
measuring test is not slowed by it.

    python -m tests.support.auth_flood SOCKET TOTAL CONNECTIONS

Sends TOTAL Login calls, pipelined on CONNECTIONS connections, round-robin over 2,000
sources: 1,000 IPv4 addresses, 999 IPv6 addresses in distinct /48s, and one /64 that
sprays (a fresh random address for each of its requests, 10% of the total). Prints one
JSON object: the count of each reply (error name or "ok") and the time taken.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import socket
import sys
import threading
import time
from collections import Counter

SPRAY_PREFIX = int(ipaddress.IPv6Address("2001:db8:ffff:1::"))
BATCH = 32


def addresses(total: int, rng: random.Random) -> list[str]:
    fixed = [f"10.{i // 250}.{i % 250}.{1 + i % 7}" for i in range(1000)]
    fixed += [
        str(ipaddress.IPv6Address((0x20010DB8 << 96) + ((i + 1) << 80) + 1)) for i in range(999)
    ]
    out = []
    for n in range(total):
        if n % 10 == 9:
            out.append(str(ipaddress.IPv6Address(SPRAY_PREFIX + rng.getrandbits(64))))
        else:
            out.append(fixed[n % len(fixed)])
    return out


def call(address: str, n: int) -> bytes:
    user = "victim" if n % 3 == 0 else f"u{n % 500}"
    params = {
        "user": user,
        "password": base64.b64encode(b"wrong-%d" % n).decode(),
        "remote_address": address,
    }
    return json.dumps({"method": "io.mfpsecd.Auth.Login", "parameters": params}).encode() + b"\0"


def worker(sock_path: str, calls: list[bytes], counts: Counter[str], lock: threading.Lock) -> None:
    """Pipelines without waiting: a flooder does not wait for answers. Flow control is
    the daemon's (it stops reading a connection whose queue is full)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)

    def send() -> None:
        for start in range(0, len(calls), BATCH):
            s.sendall(b"".join(calls[start : start + BATCH]))

    sender = threading.Thread(target=send)
    sender.start()
    buf = b""
    local: Counter[str] = Counter()
    for _ in calls:
        while b"\0" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("daemon closed the connection")
            buf += chunk
        msg, _, buf = buf.partition(b"\0")
        local[json.loads(msg).get("error", "ok")] += 1
    sender.join()
    s.close()
    with lock:
        counts.update(local)


def main() -> None:
    sock_path, total, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(20261122)
    calls = [call(a, n) for n, a in enumerate(addresses(total, rng))]
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    t0 = time.monotonic()
    threads = [
        threading.Thread(target=worker, args=(sock_path, calls[i::conns], counts, lock))
        for i in range(conns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"replies": dict(counts), "seconds": time.monotonic() - t0}))


if __name__ == "__main__":
    main()
