"""A-5/A-6 under load: 100,000 login requests from 2,000 sources (IPv4, IPv6, one /64
spraying addresses) against the real daemon. A legitimate client's GetStatus stays fast,
the attack is detected and recorded, notifications stay bounded, and so does memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mfpsecd.client import Connection
from mfpsecd.system import api as system
from tests.support import daemon as ds
from tests.support.smtp_sink import MailSink, starttls_sink

pytestmark = pytest.mark.slow

TOTAL = 100_000
CONNECTIONS = 16
RSS_BOUND_MIB = 160  # the stated bound (README, auth.flood): the tables are bounded


def test_login_flood_keeps_status_fast_detects_and_stays_bounded(short_tmp: Path) -> None:
    with starttls_sink(short_tmp) as sink:
        _flood(short_tmp, sink)


def _flood(short_tmp: Path, sink: MailSink) -> None:
    port, ca = sink.port, sink.ca
    # A smaller tarpit and shorter delays than the defaults so the flood ends in seconds:
    # a delayed request holds up its connection (replies keep call order), so with the
    # defaults each of the generator's 16 connections would get one call through per 5 s.
    config = {
        "auth": {
            "argon2_memory_kib": 8192,
            "argon2_iterations": 1,
            "flood": {"max_delayed": 4, "base_delay_s": 0.002, "max_delay_s": 0.01},
        },
        "notify": {
            "mail": {
                "host": "localhost",
                "port": port,
                "sender": "mfp@example.net",
                "recipients": ["admin@example.net"],
                "ca_file": str(ca),
            }
        },
    }
    with ds.running(short_tmp / "d", config=config, tpm="none") as d:
        r = ds.mfpsec(
            d.socket_path,
            "users",
            "init",
            "admin",
            "--password-file",
            "-",
            stdin="Adm1n-password-2026",
        )
        assert r.returncode == 0, r.stderr
        rt = {"XDG_RUNTIME_DIR": str(short_tmp)}
        r = ds.mfpsec(
            d.socket_path,
            "login",
            "-u",
            "admin",
            "--password-file",
            "-",
            stdin="Adm1n-password-2026",
            env=rt,
        )
        assert r.returncode == 0, r.stderr
        r = ds.mfpsec(
            d.socket_path,
            "users",
            "add",
            "victim",
            "--role",
            "user",
            "--password-file",
            "-",
            stdin="Target-password-2026",
            env=rt,
        )
        assert r.returncode == 0, r.stderr
        rss_before = d.rss_kib()
        flood = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.auth_flood",
                d.socket_path,
                str(TOTAL),
                str(CONNECTIONS),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ds.ROOT,
        )
        latencies: list[float] = []
        rss_peak = rss_before
        with Connection(d.socket_path, timeout=10) as conn:
            while flood.poll() is None:
                t0 = time.perf_counter()
                conn.call(system.GET_STATUS)
                latencies.append(time.perf_counter() - t0)
                if len(latencies) % 50 == 0:
                    rss_peak = max(rss_peak, d.rss_kib())
                time.sleep(0.005)
        out, _ = flood.communicate(timeout=60)
        assert flood.returncode == 0
        result = json.loads(out)
        replies = result["replies"]
        assert sum(replies.values()) == TOTAL
        assert set(replies) <= {
            "io.mfpsecd.Auth.Throttled",
            "io.mfpsecd.Auth.AuthenticationFailed",
            "io.mfpsecd.Auth.AccountLocked",
        }, replies
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99)]
        assert len(latencies) >= 100
        # Starvation (delayed logins holding up the loop) shows as seconds. The typical
        # figure (p99 ~22 ms, README) is a measurement, not a threshold: on this 2-core
        # machine the flood, the daemon and this client share the CPUs, and a 50 ms
        # bound failed one clean CI run at 64.6 ms.
        assert p99 < 0.250, f"GetStatus p99 {p99 * 1000:.1f} ms during the flood"
        assert rss_peak < RSS_BOUND_MIB * 1024, (rss_before, rss_peak)

        r = ds.mfpsec(
            d.socket_path, "audit", "show", "--type", "auth.flood", "--limit", "0", "--json"
        )
        floods = json.loads(r.stdout)
        kinds = {e["details"]["kind"] for e in floods}
        # A-6 (too many requests); A-5 (failures per source) is shown in test_auth.
        assert {"total-flood", "request-flood"} <= kinds, kinds
        objects = {e["object"] for e in floods}
        assert "ip:2001:db8:ffff:1::/64" in objects  # the sprayer, as one source
        # Bounded: ~2,000 sources flooded, but at most max_detections (20) events per
        # 60 s window reach the log (the rest are counted, see test_throttle).
        windows = result["seconds"] // 60 + 2
        assert len(floods) <= 20 * windows
        deadline = time.monotonic() + 20
        while not any("request flood" in s for s in sink.subjects):
            assert time.monotonic() < deadline, sink.subjects
            time.sleep(0.2)
        time.sleep(1.0)
        assert sum("request flood" in s for s in sink.subjects) == 1, sink.subjects
        # One per rule per 300 s at most ("role changed" is the user the test added).
        rules = Counter(s.split("] ", 1)[1].split(":", 1)[0] for s in sink.subjects)
        assert max(rules.values()) == 1, sink.subjects
        print(
            f"\nflood: {result['seconds']:.1f} s for {TOTAL} requests, replies "
            f"{replies}; GetStatus p99 {p99 * 1000:.2f} ms over {len(latencies)} "
            f"calls; RSS {rss_before // 1024} -> {rss_peak // 1024} MiB; "
            f"{len(floods)} detection events; mails {sink.subjects}"
        )
