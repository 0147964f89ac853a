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

A blocklist of 100,000 ranges (issue 22), side by side:
  import       `Network.Import` replacing the refused list: the text parsed and checked,
               one transaction, the rows stored, one audit record
  nft -f       the same table as nft text, one process
One range at a time into a list of 1,000 and into one of 100,000 (a refused /32 added,
then removed: each edit is one call of the daemon's path):
  edit@1k, edit@100k   the daemon (delta into the kernel set, one row, one audit record)
  nft add element      one `nft add element` + `delete element` process pair per range
  kernel@100k  the same element swaps sent alone: what the kernel's commit costs (on this
               kernel it grows with the set: 0.1 ms at 1,000 elements, 2.6 ms at 100,000)
Before issue 22 an edit recompiled and re-sent the whole ruleset; now the daemon's own
work per edit does not grow with the list, and what grows is the kernel's commit.
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
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.addresses import Range, parse_range
from mfpsecd.base.clock import SystemClock
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.ipfilter import service as svc
from mfpsecd.ipfilter.backends.nftables_filter import NftablesFilter
from mfpsecd.ipfilter.backends.rtnetlink import RtnetlinkAddresses
from mfpsecd.ipfilter.model import ruleset as nf

RANGES = 10_000
PER_ENTRY = 1_000
BLOCKLIST = 100_000
EDITS = 100  # per measurement of single edits
METRICS = [Metric("rps", "ranges/s", ",.0f"), Metric("seconds", "seconds", ",.3f")]
ADMIN = Subject(origin="cli", user="bench", role="administrator")


def _ranges(count: int, seed: int) -> list[Range]:
    rng = random.Random(seed)
    out: set[Range] = set()
    while len(out) < count:
        if rng.random() < 0.8:
            base = (10 << 24) | (rng.randrange(1 << 20) << 4)
            size = rng.choice([1, 1, 1, 16])
            out.add(Range(4, base, base + size - 1))
        else:
            base = int(ipaddress.ip_address("2001:db8::")) | (rng.randrange(1 << 40) << 64)
            out.add(Range(6, base, base + (1 << 64) - 1))
    return sorted(out)


def _timed(count: int, fn: Callable[[], object]) -> Metrics:
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return {"rps": count / seconds, "seconds": seconds}


def run(settings: Settings) -> SuiteResult:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        raise SystemExit("bench netfilter: needs root and nft (make setup installs it)")
    tag = secrets.token_hex(3)
    ns, ns_small = f"mfpbench{tag}", f"mfpbench{tag}s"
    for name in (ns, ns_small):
        subprocess.run(["ip", "netns", "add", name], check=True)
    work = Path(tempfile.mkdtemp(prefix="mfpsec-bench-nf-"))
    try:
        return asyncio.run(_run(settings, ns, ns_small, work))
    finally:
        for name in (ns, ns_small):
            subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(work, ignore_errors=True)


ON = frozenset({"http", "https", "ipp", "snmp"})


def _listing(ns: str, path: Path, flush: str) -> Path:
    """The table as `nft list` prints it, after the in-place flush ours does."""
    listing = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "list", "table", "inet", nf.TABLE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path.write_text(flush + listing)
    return path


async def _run(settings: Settings, ns: str, ns_small: str, work: Path) -> SuiteResult:  # noqa: C901 - to split (issue 24)
    clock = SystemClock()
    state = SqliteState(work / "state.sqlite3")
    await state.open()
    state_small = SqliteState(work / "small.sqlite3")
    await state_small.open()
    health = HealthRegistry(clock)
    auditor = Auditor(AuditFile(work / "audit"), clock, health, state)
    await auditor.start()
    filt = NftablesFilter(ns)
    net = svc.NetfilterService(
        state,
        filt,
        RtnetlinkAddresses(ns, ("lan0",)),
        auditor=auditor,
        clock=clock,
        health=health,
        settings=svc.NetSettings(nf.DEFAULT_SERVICES, ("lan0",), (), work / "netfilter.json"),
    )
    await net.start()
    loop = asyncio.get_running_loop()
    policies = [
        nf.Policy(
            deny=tuple(_ranges(RANGES, seed)),
            allow=(parse_range("10.0.0.0/8"), parse_range("2001:db8::/32")),
            enabled=ON,
        )
        for seed in (1, 2)
    ]
    flip = [0]

    def next_policy() -> nf.Policy:
        flip[0] ^= 1
        return policies[flip[0]]

    def daemon() -> Metrics:
        p = next_policy()
        return _timed(
            RANGES,
            lambda: asyncio.run_coroutine_threadsafe(
                net.change("bench", lambda _: p, ADMIN), loop
            ).result(),
        )

    def library() -> Metrics:
        p = next_policy()
        return _timed(
            RANGES,
            lambda: asyncio.run_coroutine_threadsafe(
                filt.apply(
                    nf.compile_ruleset(
                        p, nf.DEFAULT_SERVICES, nf.Device(("lan0",), ()), new_table=False
                    )
                ),
                loop,
            ).result(),
        )

    # The same rules as nft text, as `nft list` prints them once loaded, preceded by the
    # same in-place replacement ours does: rules and set elements flushed in the batch.
    flush = f"flush table inet {nf.TABLE}\n" + "".join(
        f"flush set inet {nf.TABLE} {name}\n"
        for name in (*nf.set_names(4), *nf.set_names(6), "tcp_ports", "udp_ports")
    )
    texts: list[Path] = []
    for p in policies:
        await filt.apply(
            nf.compile_ruleset(p, nf.DEFAULT_SERVICES, nf.Device(("lan0",), ()), new_table=False)
        )
        texts.append(_listing(ns, work / f"rules{len(texts)}.nft", flush))

    def nft_file() -> Metrics:
        path = texts[next_policy() is policies[1]]
        return _timed(
            RANGES,
            lambda: subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(path)], check=True),
        )

    sample = [r for r in _ranges(PER_ENTRY, 9) if r.family == 4]

    def per_entry() -> Metrics:
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "flush", "set", "inet", nf.TABLE, "deny4"],
            check=True,
        )
        t0 = time.perf_counter()
        for r in sample:
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "nft",
                    "add",
                    "element",
                    "inet",
                    nf.TABLE,
                    "deny4",
                    f"{{ {r} }}",
                ],
                check=True,
            )
        seconds = (time.perf_counter() - t0) * RANGES / len(sample)
        return {"rps": RANGES / seconds, "seconds": seconds}

    # ---- a blocklist of 100,000 ranges, and single edits into lists of 1k and 100k
    lists = [_ranges(BLOCKLIST, seed) for seed in (3, 4)]
    texts_100k = ["\n".join(map(str, rs)) + "\n" for rs in lists]

    def daemon_import() -> Metrics:
        text = texts_100k[flip[0]]
        flip[0] ^= 1
        return _timed(
            BLOCKLIST,
            lambda: asyncio.run_coroutine_threadsafe(
                net.import_ranges("deny", text, ADMIN, replace_list=True), loop
            ).result(),
        )

    nft_100k: list[Path] = []
    for rs in lists:
        await filt.apply(
            nf.compile_ruleset(
                nf.Policy(deny=tuple(rs), enabled=ON),
                nf.DEFAULT_SERVICES,
                nf.Device(("lan0",), ()),
                new_table=False,
            )
        )
        nft_100k.append(_listing(ns, work / f"big{len(nft_100k)}.nft", flush))

    def nft_import() -> Metrics:
        path = nft_100k[flip[0]]
        flip[0] ^= 1
        return _timed(
            BLOCKLIST,
            lambda: subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(path)], check=True),
        )

    small = svc.NetfilterService(
        state_small,
        NftablesFilter(ns_small),
        RtnetlinkAddresses(ns_small, ("lan0",)),
        auditor=auditor,
        clock=clock,
        health=health,
        settings=svc.NetSettings(nf.DEFAULT_SERVICES, ("lan0",), (), work / "small.json"),
    )
    await small.start()
    await small.import_ranges(
        "deny", "\n".join(map(str, _ranges(1000, 5))), ADMIN, replace_list=True
    )
    await net.import_ranges("deny", texts_100k[0], ADMIN, replace_list=True)
    edit_base = int(ipaddress.ip_address("172.16.0.0"))

    def edits(service: svc.NetfilterService) -> Metrics:
        addrs = [str(ipaddress.ip_address(edit_base + 2 * i)) for i in range(EDITS)]

        async def run() -> None:
            for a in addrs:
                await service.edit_range("deny", a, ADMIN)
                await service.edit_range("remove", a, ADMIN)

        return _timed(2 * EDITS, lambda: asyncio.run_coroutine_threadsafe(run(), loop).result())

    def kernel_swaps() -> Metrics:
        """The same element swaps alone, straight to the kernel: the floor of an edit."""

        async def run() -> None:
            for i in range(EDITS):
                r = Range(4, edit_base + 2 * i, edit_base + 2 * i)
                await filt.swap_intervals([("deny4", (), (r,))])
                await filt.swap_intervals([("deny4", (r,), ())])

        return _timed(2 * EDITS, lambda: asyncio.run_coroutine_threadsafe(run(), loop).result())

    def nft_edits() -> Metrics:
        t0 = time.perf_counter()
        for i in range(EDITS // 10):
            a = ipaddress.ip_address(edit_base + 2 * i)
            for verb in ("add", "delete"):
                subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "nft",
                        verb,
                        "element",
                        "inet",
                        nf.TABLE,
                        "deny4",
                        f"{{ {a} }}",
                    ],
                    check=True,
                )
        seconds = time.perf_counter() - t0
        return {"rps": 2 * (EDITS // 10) / seconds, "seconds": seconds}

    contenders = [
        Contender("daemon", "the daemon's apply path (compile, transaction, store, audit)", daemon),
        Contender("library", "compile + one libnftables transaction", library),
        Contender("nft", "nft -f of the same rules (one process)", nft_file),
    ]
    progress(f"  {RANGES} ranges per ruleset")
    # Measured from a thread: the contenders wait on coroutines of this loop.
    results = [
        await asyncio.to_thread(
            alternate,
            Scenario("replace", f"replace a ruleset of {RANGES:,} ranges", contenders),
            settings.rounds,
        )
    ]
    results.append(
        await asyncio.to_thread(
            alternate,
            Scenario(
                "per-entry",
                f"{RANGES:,} ranges one by one (measured on {len(sample)}, scaled)",
                [Contender("per-entry", "nft add element, one process per range", per_entry)],
            ),
            1 if settings.quick else 2,
        )
    )
    progress(f"  a blocklist of {BLOCKLIST:,} ranges; single edits at 1k and {BLOCKLIST:,}")
    results.append(
        await asyncio.to_thread(
            alternate,
            Scenario(
                "import",
                f"import (replace) a blocklist of {BLOCKLIST:,} ranges",
                [
                    Contender(
                        "import",
                        "Network.Import: parse, check, one transaction, store, audit",
                        daemon_import,
                    ),
                    Contender("nft", "nft -f of the same table (one process)", nft_import),
                ],
            ),
            settings.rounds,
        )
    )
    await net.import_ranges("deny", texts_100k[0], ADMIN, replace_list=True)
    results.append(
        await asyncio.to_thread(
            alternate,
            Scenario(
                "edit",
                "one range added and removed, call by call",
                [
                    Contender("edit@1k", "the daemon, into a list of 1,000", lambda: edits(small)),
                    Contender(
                        "edit@100k", f"the daemon, into a list of {BLOCKLIST:,}", lambda: edits(net)
                    ),
                    Contender(
                        "kernel@100k",
                        f"the element swaps alone, a set of {BLOCKLIST:,}",
                        kernel_swaps,
                    ),
                    Contender("nft-element", "nft add/delete element, one process each", nft_edits),
                ],
            ),
            settings.rounds,
        )
    )
    small.close()
    await state_small.close()
    net.close()
    await auditor.stop()
    await state.close()
    findings = [
        ratio_finding("daemon apply path vs nft -f", results[0], "daemon", "nft", target=1.0),
        ratio_finding("compile + transaction vs nft -f", results[0], "library", "nft"),
    ]
    per = results[1].median("per-entry", "rps")
    findings.append(
        Finding(
            "daemon apply path vs per-entry insertion",
            results[0].median("daemon", "rps") / per,
            "x",
        )
    )
    findings += [
        ratio_finding(
            f"import of {BLOCKLIST:,} vs nft -f", results[2], "import", "nft", target=1.0
        ),
        ratio_finding(
            f"one edit at {BLOCKLIST:,} ranges vs at 1,000", results[3], "edit@100k", "edit@1k"
        ),
        ratio_finding(
            f"one edit at {BLOCKLIST:,}: the daemon vs the kernel's swap alone",
            results[3],
            "edit@100k",
            "kernel@100k",
        ),
        ratio_finding(
            f"one edit at {BLOCKLIST:,}: the daemon vs nft add/delete element",
            results[3],
            "edit@100k",
            "nft-element",
            target=10.0,
        ),
    ]
    return SuiteResult(
        suite="netfilter",
        title=f"applying {RANGES:,} ranges vs nft -f and "
        f"per-entry insertion; a {BLOCKLIST:,}-range import; single edits",
        settings=settings,
        metrics=METRICS,
        scenarios=results,
        findings=findings,
        notes=[
            "Run in a network namespace of the bench's own; nft "
            f"{_nft_version()}; ipset and firewall-cmd are not installed, "
            "so per-entry insertion is measured with nft add element."
        ],
        facts={"ranges": str(RANGES), "blocklist": str(BLOCKLIST)},
    )


def _nft_version() -> str:
    return subprocess.run(
        ["nft", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
