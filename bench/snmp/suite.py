"""The MFPSEC-MIB through net-snmp (issue 29): what a fleet tool waits for when it reads
mfpsecd's objects through the device's snmpd (AgentX to the daemon's subagent), beside
the same reads of snmpd's own system group, which snmpd answers itself.

A real snmpd with an AgentX master socket and the daemon on a test board (software keys)
with `[snmp] agentx_socket`, both started for the run; the manager is pysnmp in this
process, SNMPv3 authPriv (HMAC-SHA-256, AES-128) over loopback, the same for both sides,
so the ratios are the cost of the AgentX hop and of the daemon's answer. A GET reads one
object (mfpsecDaemonVersion.0 / sysDescr.0); a WALK reads the whole subtree (about 190
objects on this board) or the system group with GETBULK (25 per request), as
snmp_exporter and Checkmk do. The subagent reads the daemon's facts at most once a
second (snmp.cache_s): most requests of a measurement are served from them, as a fleet
tool's poll is.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    Contender,
    Metric,
    Metrics,
    Scenario,
    Settings,
    SuiteResult,
    alternate,
    latency_stats,
    progress,
    ratio_finding,
)
from tests.support import daemon as ds
from tests.support.snmp_agents import READER, SUBTREE, SYSTEM_GROUP, Snmpd

OURS_GET = SUBTREE + ".1.1.1.0"  # mfpsecDaemonVersion.0
SNMPD_GET = SYSTEM_GROUP + ".1.0"  # sysDescr.0


class Manager:
    """pysnmp as a fleet tool: one engine, one user, one target for the whole run."""

    def __init__(self, port: int) -> None:
        from pysnmp.hlapi.v3arch import asyncio as hlapi

        self.hlapi = hlapi
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.engine = hlapi.SnmpEngine()
        self.user = hlapi.UsmUserData(
            READER.name,
            READER.auth_key,
            READER.priv_key,
            authProtocol=hlapi.usmHMAC192SHA256AuthProtocol,
            privProtocol=hlapi.usmAesCfb128Protocol,
        )
        self.target = self.loop.run_until_complete(
            hlapi.UdpTransportTarget.create(("127.0.0.1", port), timeout=5, retries=0)
        )

    def get(self, oid: str) -> None:
        h = self.hlapi
        error, status, _, binds = self.loop.run_until_complete(
            h.get_cmd(
                self.engine,
                self.user,
                self.target,
                h.ContextData(),
                h.ObjectType(h.ObjectIdentity(oid)),
            )
        )
        if error or status or "No Such" in str(binds[0][1]):
            raise RuntimeError(f"GET {oid}: {error or status.prettyPrint() or binds}")

    def walk(self, oid: str) -> int:
        async def objects() -> int:
            h, n = self.hlapi, 0
            async for error, status, _, binds in h.bulk_walk_cmd(
                self.engine,
                self.user,
                self.target,
                h.ContextData(),
                0,
                25,
                h.ObjectType(h.ObjectIdentity(oid)),
                lexicographicMode=False,
            ):
                if error or status:
                    raise RuntimeError(f"WALK {oid}: {error or status.prettyPrint()}")
                n += len(binds)
            return n

        return self.loop.run_until_complete(objects())

    def close(self) -> None:
        self.engine.close_dispatcher()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()


def _calls(seconds: float, warmup: float, call: Callable[[], Any]) -> Metrics:
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        call()
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return latency_stats(samples)


def _gets(seconds: float, warmup: float, manager: Manager, oid: str) -> Metrics:
    m = _calls(seconds, warmup, lambda: manager.get(oid))
    return {**m, "objects": 1.0, "per_object_us": m["p50_us"]}


def _walks(seconds: float, warmup: float, manager: Manager, oid: str) -> Metrics:
    counts: list[int] = []
    m = _calls(seconds, warmup, lambda: counts.append(manager.walk(oid)))
    objects = float(counts[-1])
    return {**m, "objects": objects, "per_object_us": m["p50_us"] / objects}


def run(settings: Settings) -> SuiteResult:
    for tool in ("snmpd",):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: make setup installs it")
    work = Path(tempfile.mkdtemp(prefix="mfp-bench-snmp-"))
    work.chmod(0o711)
    snmpd = Snmpd(work / "snmpd")
    manager = None
    try:
        config = {"snmp": {"agentx_socket": str(snmpd.agentx)}}
        with ds.running(work / "d", config=config, tpm="none"):
            walk = snmpd.wait_registered()
            progress(f"snmp: the subagent serves {len(walk)} objects")
            manager = Manager(snmpd.port)
            m = manager
            s, w = settings.seconds, settings.warmup
            get = Scenario(
                "get",
                "GET of one object, SNMPv3 authPriv through snmpd",
                [
                    Contender(
                        "ours",
                        "mfpsecDaemonVersion.0 (AgentX)",
                        lambda: _gets(s, w, m, OURS_GET),
                    ),
                    Contender(
                        "snmpd",
                        "sysDescr.0 (snmpd's own)",
                        lambda: _gets(s, w, m, SNMPD_GET),
                    ),
                ],
            )
            walks = Scenario(
                "walk",
                "WALK with GETBULK (25 per request), SNMPv3 authPriv through snmpd",
                [
                    Contender(
                        "ours", "MFPSEC-MIB subtree (AgentX)", lambda: _walks(s, w, m, SUBTREE)
                    ),
                    Contender(
                        "snmpd", "system group (snmpd's own)", lambda: _walks(s, w, m, SYSTEM_GROUP)
                    ),
                ],
            )
            results = [alternate(get, settings.rounds), alternate(walks, settings.rounds)]
    finally:
        if manager is not None:
            manager.close()
        snmpd.stop()
        shutil.rmtree(work, ignore_errors=True)
    g, wk = results
    findings = [
        ratio_finding("GET latency p50, ours / snmpd's own", g, "ours", "snmpd", metric="p50_us"),
        ratio_finding(
            "WALK time per object p50, ours / snmpd's own",
            wk,
            "ours",
            "snmpd",
            metric="per_object_us",
        ),
        ratio_finding(
            "WALK of the whole subtree / of the system group, p50",
            wk,
            "ours",
            "snmpd",
            metric="p50_us",
        ),
    ]
    return SuiteResult(
        "snmp",
        "the MFPSEC-MIB read through snmpd (AgentX), beside snmpd's own system group",
        settings,
        [
            Metric("rps", "requests (walks)/s", ",.0f"),
            Metric("p50_us", "p50 µs", ",.0f"),
            Metric("p99_us", "p99 µs", ",.0f"),
            Metric("objects", "objects per walk", ",.0f"),
            Metric("per_object_us", "p50 µs per object", ",.1f"),
        ],
        results,
        findings,
        notes=[
            "Both sides go through the same manager, the same SNMPv3 user (SHA-256, AES-128) "
            "and the same snmpd: the difference is the AgentX hop to the daemon's subagent "
            "and its answer, against snmpd answering from its own memory.",
            "The system group is 8 scalars plus the sysOR table snmpd registers; the "
            "MFPSEC-MIB subtree holds every posture row and component of the board, so the "
            "per-object figure is the fair comparison of the walks.",
            "The subagent reads the daemon's facts at most once per snmp.cache_s (1 s): a "
            "measurement's requests mostly hit the same facts, as a fleet tool's poll does.",
        ],
    )
