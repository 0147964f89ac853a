"""Applying an IP filter of 10,000 ranges, side by side, in a network namespace of the
bench's own (root only).

Contenders, each replacing the whole ruleset (the same table: 10,000 refused IPv4 and
IPv6 ranges and addresses, a few permitted ones, the service ports):
  daemon       the daemon's own apply path, in process: the policy compiled, applied as
               one libnftables transaction, the boot rules file written, the policy
               stored (SQLite, synchronous=FULL) and the change audited
  compile+apply the library part alone: compile and one libnftables transaction
  nft -f       `nft -f FILE` of the same rules as nft text (what `nft list` prints for the
               table, after flushing its rules and sets as ours does), one process
  per entry    ipset/firewall-cmd style: one `nft add element` process per range, on
               1,000 ranges, scaled to 10,000
Figures are ranges per second; the ratio against `nft -f` is the target (>= 1x, i.e. no
slower).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    Contender,
    Finding,
    Metric,
    Metrics,
    Scenario,
    Settings,
    SuiteResult,
    alternate,
    progress,
    ratio_finding,
)
from mfpsecd.api.auditlog import Subject
from mfpsecd.backends.audit_file import AuditFile
from mfpsecd.backends.clock import SystemClock
from mfpsecd.backends.nftables_filter import NftablesFilter
from mfpsecd.backends.rtnetlink import RtnetlinkAddresses
from mfpsecd.backends.sqlite_state import SqliteState
from mfpsecd.core import netfilter as nf
from mfpsecd.services import netfilter as svc
from mfpsecd.services.audit import Auditor
from mfpsecd.services.health import HealthRegistry

RANGES = 10_000
PER_ENTRY = 1_000
METRICS = [Metric("rps", "ranges/s", ",.0f"), Metric("seconds", "seconds", ",.3f")]
ADMIN = Subject(origin="cli", user="bench", role="administrator")


def _ranges(count: int, seed: int) -> list[nf.Range]:
    rng = random.Random(seed)
    out: set[nf.Range] = set()
    while len(out) < count:
        if rng.random() < 0.8:
            base = (10 << 24) | (rng.randrange(1 << 20) << 4)
            size = rng.choice([1, 1, 1, 16])
            out.add(nf.Range(4, base, base + size - 1))
        else:
            base = int(ipaddress.ip_address("2001:db8::")) | (rng.randrange(1 << 40) << 64)
            out.add(nf.Range(6, base, base + (1 << 64) - 1))
    return sorted(out)


def _timed(count: int, fn: Callable[[], object]) -> Metrics:
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return {"rps": count / seconds, "seconds": seconds}


def run(settings: Settings) -> SuiteResult:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        raise SystemExit("bench netfilter: needs root and nft (make setup installs it)")
    ns = f"mfpbench{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    work = Path(tempfile.mkdtemp(prefix="mfpsec-bench-nf-"))
    try:
        return asyncio.run(_run(settings, ns, work))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(work, ignore_errors=True)


async def _run(settings: Settings, ns: str, work: Path) -> SuiteResult:
    clock = SystemClock()
    state = SqliteState(work / "state.sqlite3")
    await state.open()
    health = HealthRegistry(clock)
    auditor = Auditor(AuditFile(work / "audit"), clock, health, state)
    await auditor.start()
    filt = NftablesFilter(ns)
    net = svc.NetfilterService(state, filt, RtnetlinkAddresses(ns, ("lan0",)), auditor=auditor,
                               clock=clock, health=health,
                               settings=svc.NetSettings(nf.DEFAULT_SERVICES, ("lan0",), (),
                                                        work / "netfilter.json"))
    await net.start()
    loop = asyncio.get_running_loop()
    policies = [nf.Policy(deny=tuple(_ranges(RANGES, seed)),
                          allow=(nf.parse_range("10.0.0.0/8"), nf.parse_range("2001:db8::/32")),
                          enabled=frozenset({"http", "https", "ipp", "snmp"}))
                for seed in (1, 2)]
    flip = [0]

    def next_policy() -> nf.Policy:
        flip[0] ^= 1
        return policies[flip[0]]

    def daemon() -> Metrics:
        p = next_policy()
        return _timed(RANGES, lambda: asyncio.run_coroutine_threadsafe(
            net.change("bench", lambda _: p, ADMIN), loop).result())

    def library() -> Metrics:
        p = next_policy()
        return _timed(RANGES, lambda: asyncio.run_coroutine_threadsafe(filt.apply(
            nf.compile_ruleset(p, nf.DEFAULT_SERVICES, nf.Device(("lan0",), ()),
                               new_table=False)), loop).result())

    # The same rules as nft text, as `nft list` prints them once loaded, preceded by the
    # same in-place replacement ours does: rules and set elements flushed in the batch.
    flush = f"flush table inet {nf.TABLE}\n" + "".join(
        f"flush set inet {nf.TABLE} {name}\n" for name in (
            *nf.set_names(4), *nf.set_names(6), "tcp_ports", "udp_ports"))
    texts: list[Path] = []
    for p in policies:
        await filt.apply(nf.compile_ruleset(p, nf.DEFAULT_SERVICES, nf.Device(("lan0",), ()),
                                            new_table=False))
        listing = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet",
                                  nf.TABLE], capture_output=True, text=True, check=True).stdout
        path = work / f"rules{len(texts)}.nft"
        path.write_text(flush + listing)
        texts.append(path)

    def nft_file() -> Metrics:
        path = texts[next_policy() is policies[1]]
        return _timed(RANGES, lambda: subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", str(path)], check=True))

    sample = [r for r in _ranges(PER_ENTRY, 9) if r.family == 4]

    def per_entry() -> Metrics:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "set", "inet", nf.TABLE,
                        "deny4"], check=True)
        t0 = time.perf_counter()
        for r in sample:
            subprocess.run(["ip", "netns", "exec", ns, "nft", "add", "element", "inet",
                            nf.TABLE, "deny4", f"{{ {r} }}"], check=True)
        seconds = (time.perf_counter() - t0) * RANGES / len(sample)
        return {"rps": RANGES / seconds, "seconds": seconds}

    contenders = [
        Contender("daemon", "the daemon's apply path (compile, transaction, store, audit)",
                  daemon),
        Contender("library", "compile + one libnftables transaction",
                  library),
        Contender("nft", "nft -f of the same rules (one process)", nft_file),
    ]
    progress(f"  {RANGES} ranges per ruleset")
    # Measured from a thread: the contenders wait on coroutines of this loop.
    results = [await asyncio.to_thread(alternate, Scenario(
        "replace", f"replace a ruleset of {RANGES:,} ranges", contenders), settings.rounds)]
    results.append(await asyncio.to_thread(alternate, Scenario(
        "per-entry", f"{RANGES:,} ranges one by one (measured on {len(sample)}, scaled)",
        [Contender("per-entry", "nft add element, one process per range", per_entry)]),
        1 if settings.quick else 2))
    net.close()
    await auditor.stop()
    await state.close()
    findings = [
        ratio_finding("daemon apply path vs nft -f", results[0], "daemon", "nft", target=1.0),
        ratio_finding("compile + transaction vs nft -f", results[0], "library", "nft"),
    ]
    per = results[1].median("per-entry", "rps")
    findings.append(Finding("daemon apply path vs per-entry insertion",
                            results[0].median("daemon", "rps") / per, "x"))
    return SuiteResult(suite="netfilter", title=f"applying {RANGES:,} ranges vs nft -f and "
                       "per-entry insertion", settings=settings, metrics=METRICS,
                       scenarios=results, findings=findings,
                       notes=["Run in a network namespace of the bench's own; nft "
                              f"{_nft_version()}; ipset and firewall-cmd are not installed, "
                              "so per-entry insertion is measured with nft add element."],
                       facts={"ranges": str(RANGES)})


def _nft_version() -> str:
    return subprocess.run(["nft", "--version"], capture_output=True, text=True,
                          check=False).stdout.strip()
