"""Durable audit records per second, and chain verification speed.

Scenarios "8 producers" and "64 producers": that many concurrent tasks each write audit
records, one after the other, each waiting until its record is durable:
  ours   the daemon's Auditor on its file store: group commit (one fdatasync per batch
         of whatever is outstanding)
  (a)    the same file store, one record per write + fdatasync (the classic baseline)
  (b)    SQLite (WAL, synchronous=FULL) with each record its own transaction

Scenario "verify": the same records checked by
  ours   the daemon's verification (the chain walked in C by the native extension,
         GIL released; api.auditlog.verify only names the kind of a break)
  (c)    hashlib SHA-256 alone chaining over the same bytes: the floor for a hash chain
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
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
from mfpsecd.audit import log_format as auditlog
from mfpsecd.audit.backends.audit_file import AuditFile, verify_fast
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Record, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import SystemClock
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.base.state import StateConnection

SUBJECT = Subject(origin="panel", user="jdoe", role="user", uid=1001, pid=4242)
METRICS = [
    Metric("rps", "records/s", ",.0f"),
    Metric("p50_us", "p50 µs", ",.0f"),
    Metric("p99_us", "p99 µs", ",.0f"),
]


def _record(seq: int, prev: bytes) -> bytes:
    return auditlog.canonical(
        Record(
            seq=seq,
            prev=prev.hex(),
            time="2026-11-22T03:00:00.000000Z",
            type=EventType.JOB_COMPLETE,
            outcome=Outcome.SUCCESS,
            subject=SUBJECT,
            object=f"job {seq}",
            details={"pages": 12, "queue": "secure-print"},
        )
    )


class OneFsyncPerRecord:
    """The baseline: each record written and fdatasync'ed on its own."""

    def __init__(self, store: AuditFile) -> None:
        self.store = store
        self.lock = asyncio.Lock()
        self.seq = 0
        self.prev = auditlog.GENESIS

    async def record(self) -> None:
        async with self.lock:
            raw = _record(self.seq + 1, self.prev)
            await self.store.append([raw])
            self.seq += 1
            self.prev = auditlog.chain_hash(self.prev, raw)


class SqlitePerRecord:
    def __init__(self, state: SqliteState) -> None:
        self.state = state
        self.seq = 0

    async def record(self) -> None:
        self.seq += 1
        raw = _record(self.seq, auditlog.GENESIS)

        def tx(conn: StateConnection) -> None:
            conn.execute("INSERT INTO bench_audit (payload) VALUES (?)", (raw,))

        await self.state.run(tx)


async def _drive(producers: int, seconds: float, op: Callable[[], Awaitable[object]]) -> Metrics:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def producer() -> None:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(producers)))
    elapsed = time.perf_counter() - t0
    us = sorted(x * 1e6 for x in latencies)
    return {
        "rps": len(us) / elapsed,
        "p50_us": statistics.median(us),
        "p99_us": us[int(len(us) * 0.99)],
        "n": float(len(us)),
    }


class Bench:
    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.clock = SystemClock()
        self.runs = 0

    def _fresh(self, name: str) -> Path:
        self.runs += 1
        return self.root / f"{name}-{self.runs}"

    def ours(self, producers: int) -> Metrics:
        async def run() -> Metrics:
            auditor = Auditor(
                AuditFile(self._fresh("ours") / "audit.log"), self.clock, HealthRegistry(self.clock)
            )
            await auditor.start()
            m = await _drive(
                producers,
                self.settings.seconds,
                lambda: auditor.record(
                    EventType.JOB_COMPLETE, Outcome.SUCCESS, SUBJECT, "job", pages=12
                ),
            )
            await auditor.stop()
            return m

        return self.loop.run_until_complete(run())

    def one_fsync(self, producers: int) -> Metrics:
        async def run() -> Metrics:
            store = AuditFile(self._fresh("fsync") / "audit.log")
            await store.open()
            baseline = OneFsyncPerRecord(store)
            m = await _drive(producers, self.settings.seconds, baseline.record)
            await store.close()
            return m

        return self.loop.run_until_complete(run())

    def sqlite(self, producers: int) -> Metrics:
        async def run() -> Metrics:
            state = SqliteState(self._fresh("sqlite") / "state.sqlite3")
            await state.open()

            def create(conn: StateConnection) -> None:
                conn.execute("CREATE TABLE bench_audit (seq INTEGER PRIMARY KEY, payload BLOB)")

            await state.run(create)
            db = SqlitePerRecord(state)
            m = await _drive(producers, self.settings.seconds, db.record)
            await state.close()
            return m

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.close()


def _with(fn: Callable[[int], Metrics], producers: int) -> Callable[[], Metrics]:
    return lambda: fn(producers)


def _chain(n: int) -> list[bytes]:
    out, prev = [], auditlog.GENESIS
    for seq in range(1, n + 1):
        raw = _record(seq, prev)
        prev = auditlog.chain_hash(prev, raw)
        out.append(raw)
    return out


def _timed(fn: Callable[[], object], records: int, seconds: float) -> Metrics:
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 3:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    best = statistics.median(samples)
    return {
        "rps": records / best,
        "p50_us": best * 1e6 / records,
        "p99_us": max(samples) * 1e6 / records,
        "n": float(len(samples)),
    }


def _hashlib_chain(records: list[bytes]) -> bytes:
    prev = auditlog.GENESIS
    for raw in records:
        prev = hashlib.sha256(prev + raw).digest()
    return prev


def run(settings: Settings) -> SuiteResult:
    root = Path(
        tempfile.mkdtemp(
            prefix="mfpsecd-bench-audit-", dir=os.environ.get("MFPSECD_BENCH_DIR", "/var/tmp")
        )
    )
    fs = subprocess.run(
        ["stat", "-f", "-c", "%T", str(root)], capture_output=True, text=True, check=False
    ).stdout.strip()
    progress(f"bench audit: files in {root} ({fs})")
    b = Bench(root, settings)
    results = []
    try:
        for producers in (8, 64):
            results.append(
                alternate(
                    Scenario(
                        f"p{producers}",
                        f"{producers} producers",
                        [
                            Contender(
                                "ours", "ours: Auditor, group commit", _with(b.ours, producers)
                            ),
                            Contender(
                                "fsync",
                                "(a) one fdatasync per record",
                                _with(b.one_fsync, producers),
                            ),
                            Contender(
                                "sqlite",
                                "(b) SQLite, one transaction per record",
                                _with(b.sqlite, producers),
                            ),
                        ],
                    ),
                    settings.rounds,
                )
            )
    finally:
        b.close()
    n = 2000 if settings.quick else 20000
    records = _chain(n)
    expected = _hashlib_chain(records)
    assert auditlog.verify(records).last_hash == expected == verify_fast(records).last_hash
    total = sum(len(r) for r in records)
    results.append(
        alternate(
            Scenario(
                "verify",
                f"verify {n} records ({total // n} B each)",
                [
                    Contender(
                        "ours",
                        "ours: verify (native chain walk)",
                        lambda: _timed(lambda: verify_fast(records), n, settings.seconds),
                    ),
                    Contender(
                        "hashlib",
                        "(c) hashlib SHA-256 chain alone",
                        lambda: _timed(lambda: _hashlib_chain(records), n, settings.seconds),
                    ),
                    Contender(
                        "flat",
                        "(d) hashlib SHA-256 over all the bytes in one call, no chain",
                        lambda: _timed(
                            lambda: hashlib.sha256(b"".join(records)).digest(), n, settings.seconds
                        ),
                    ),
                ],
            ),
            settings.rounds,
        )
    )
    p8, p64, ver = results
    findings: list[Finding] = [
        ratio_finding(
            "ours / (a) one fsync per record, 64 producers", p64, "ours", "fsync", target=10
        ),
        ratio_finding(
            "ours / (a) one fsync per record, 8 producers", p8, "ours", "fsync", target=4
        ),
        ratio_finding("ours / (b) SQLite per record, 64 producers", p64, "ours", "sqlite"),
        ratio_finding("ours / (b) SQLite per record, 8 producers", p8, "ours", "sqlite"),
        ratio_finding("verify / (c) hashlib chain, records/s", ver, "ours", "hashlib", target=0.8),
        ratio_finding("verify / (d) one flat hashlib pass, records/s", ver, "ours", "flat"),
    ]
    notes = [
        f"files on {fs} under {root.parent}; every contender makes each record durable "
        "(fdatasync, or SQLite's commit with synchronous=FULL) before the producer goes on.",
        "verify rows: records/s is records per second of one full pass; the latency "
        "columns are µs per record (median pass, slowest pass).",
    ]
    return SuiteResult(
        suite="audit",
        title="durable audit records/s and chain verify speed",
        settings=settings,
        metrics=METRICS,
        scenarios=results,
        findings=findings,
        notes=notes,
    )
