"""Key chain on swtpm: start-up unwrap time and secret put/get latency (no peer tool).

Each "contender" is one operation or phase, timed in a loop for the measurement time:
  startup       the daemon's whole key-chain start: open the state store, connect to the
                TPM, create the storage root key, load the wrapping key, RSA-decrypt the
                master key
  tpm-open      TPM connect + CreatePrimary (ECC P-256 storage root key from the template)
                + the SRK-salted session that encrypts secret-bearing responses
  unwrap        TPM2_Load of the wrapping key + TPM2_RSA_Decrypt (OAEP) of the master key
  put           SecretStore.put: seal (AES-256-GCM) + one SQLite transaction
                (WAL, synchronous=FULL: the commit's fsync is the durable point)
  get           SecretStore.get: SQLite read + unshield the master key + AES-256-GCM open
  seal          the in-memory part of put alone (unshield + native AES-256-GCM)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

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
)
from mfpsecd.base.clock import SystemClock
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.base.state import StateConnection
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.swtpm import SwtpmProcess
from mfpsecd.keys.backends.tpm2 import Tpm2Backend
from mfpsecd.keys.chain import MASTER_LABEL, KeyChain
from mfpsecd.keys.secrets import SecretKind, SecretStore

T = TypeVar("T")
Op = Callable[[], Awaitable[float | None]]

METRICS = [
    Metric("rps", "ops/s", ",.1f"),
    Metric("p50_us", "p50 µs", ",.0f"),
    Metric("p99_us", "p99 µs", ",.0f"),
    Metric("max_us", "max µs", ",.0f"),
]


class Bench:
    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.swtpm = SwtpmProcess(root / "tpm")
        self.tcti = self.loop.run_until_complete(self.swtpm.start())
        self.clock = SystemClock()
        self.secret = SecretBytes(bytearray(os.urandom(64)))
        # Provision and seed, then close: without a resource manager each start flushes the
        # previous connection's objects, so phases that open the TPM run with nothing open.
        self.stack = self.loop.run_until_complete(self._open())
        self.run(self._seed())
        self._wrapped = self.run(self.stack[0].run(_active_wrapped))
        self._wrapping = self.stack[2]._wrapping
        self.run(self._close(self.stack))

    def open_stack(self) -> None:
        self.stack = self.loop.run_until_complete(self._open())

    def close_stack(self) -> None:
        self.run(self._close(self.stack))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> tuple[SqliteState, Tpm2Backend, KeyChain, SecretStore]:
        state = SqliteState(self.root / "state.sqlite3")
        await state.open()
        tpm = Tpm2Backend(self.tcti, "swtpm")
        await tpm.open()
        chain = KeyChain(state, tpm, NativeKeyCrypto(), self.clock, HealthRegistry(self.clock))
        secrets = SecretStore(state, chain, self.clock)
        await chain.start()
        return state, tpm, chain, secrets

    async def _close(self, stack: tuple[SqliteState, Tpm2Backend, KeyChain, SecretStore]) -> None:
        state, tpm, chain, _ = stack
        await chain.close()
        await tpm.close()
        await state.close()

    async def _seed(self) -> None:
        for i in range(100):  # a realistic store: admin/server passwords, keys, credentials
            await self.stack[3].put(f"secret-{i:03d}", SecretKind.CREDENTIAL, self.secret)

    def timed(self, op: Op) -> Metrics:
        """Repeat op for the measurement time; an op that returns a duration reports only
        that part of itself (its set-up is not counted)."""
        samples: list[float] = []

        async def loop() -> None:
            warm_end = time.perf_counter() + self.settings.warmup
            while time.perf_counter() < warm_end:
                await op()
            end = time.perf_counter() + self.settings.seconds
            while time.perf_counter() < end or len(samples) < 5:
                t0 = time.perf_counter()
                part = await op()
                samples.append(time.perf_counter() - t0 if part is None else part)

        self.run(loop())
        return latency_stats(samples)

    # ---- operations

    async def startup(self) -> None:
        await self._close(await self._open())

    async def tpm_open(self) -> None:
        tpm = Tpm2Backend(self.tcti, "swtpm")
        await tpm.open()
        await tpm.close()

    async def unwrap(self) -> float:
        tpm = Tpm2Backend(self.tcti, "swtpm")
        await tpm.open()
        assert self._wrapping is not None
        t0 = time.perf_counter()
        with await tpm.decrypt(self._wrapping, self._wrapped, MASTER_LABEL):
            elapsed = time.perf_counter() - t0
        await tpm.close()
        return elapsed

    async def put(self) -> None:
        await self.stack[3].put("bench-put", SecretKind.PASSWORD, self.secret)

    async def get(self) -> None:
        with await self.stack[3].get("secret-042"):
            pass

    async def seal(self) -> None:
        self.stack[2].seal(b"bench", self.secret)

    def close(self) -> None:
        self.run(self.swtpm.stop())
        self.loop.close()


def _measure(b: Bench, op: Op) -> Callable[[], Metrics]:
    return lambda: b.timed(op)


def _active_wrapped(conn: StateConnection) -> bytes:
    row = conn.execute("SELECT wrapped FROM master_keys WHERE status = 'active'").fetchone()
    assert row is not None and isinstance(row[0], bytes)
    return row[0]


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def run(settings: Settings) -> SuiteResult:
    workdir = Path(
        tempfile.mkdtemp(
            prefix="mfpsecd-bench-keys-", dir=os.environ.get("MFPSECD_BENCH_DIR", "/var/tmp")
        )
    )
    progress(f"bench keys: state in {workdir} ({_filesystem(workdir)})")
    b = Bench(workdir, settings)
    try:

        def scenario(key: str, label: str, ops: list[tuple[str, str, Op]]) -> Scenario:
            return Scenario(
                key, label, [Contender(k, text, _measure(b, op)) for k, text, op in ops]
            )

        startup = scenario(
            "startup",
            "start-up",
            [
                ("startup", "whole key-chain start-up (state + TPM + unwrap)", b.startup),
                ("tpm-open", "TPM connect + storage root key + salted session", b.tpm_open),
                ("unwrap", "TPM2_Load + TPM2_RSA_Decrypt of the master key", b.unwrap),
            ],
        )
        secrets = scenario(
            "secrets",
            "secret store (100 secrets, 64-byte values)",
            [
                ("put", "put: seal + SQLite commit (synchronous=FULL)", b.put),
                ("get", "get: SQLite read + AES-256-GCM open", b.get),
                ("seal", "seal in memory: unshield + AES-256-GCM", b.seal),
            ],
        )
        results = [alternate(startup, settings.rounds)]
        b.open_stack()
        try:
            results.append(alternate(secrets, settings.rounds))
        finally:
            b.close_stack()
    finally:
        b.close()
    st, sec = results
    notes = [
        f"swtpm {_version(['swtpm', '--version'])} over TCP on loopback (the simulated "
        "board's TPM). A discrete TPM was not measured here; its RSA-2048 operations take far "
        "longer than swtpm's, so on a controller the TPM steps dominate start-up even more.",
        f"start-up median {st.median('startup', 'p50_us') / 1000:.1f} ms, of which the "
        "TPM connect + storage root key + salted session "
        f"{st.median('tpm-open', 'p50_us') / 1000:.1f} ms and "
        f"the load + RSA decrypt {st.median('unwrap', 'p50_us') / 1000:.1f} ms; the rest is "
        "opening SQLite (quick_check) and the daemon's own work. RSA-2048 private-key "
        "operations inside the TPM dominate the unwrap.",
        f"put median {sec.median('put', 'p50_us'):,.0f} µs against "
        f"{sec.median('seal', 'p50_us'):,.1f} µs for the sealing itself: a put is the "
        "fsync of the SQLite commit (durable before it is reported done). get "
        f"{sec.median('get', 'p50_us'):,.0f} µs is the worker-thread hop and the read.",
        f"state directory filesystem: {_filesystem(workdir)}",
    ]
    return SuiteResult(
        suite="keys",
        title="key-chain start-up and secret latency on swtpm",
        settings=settings,
        metrics=METRICS,
        scenarios=results,
        notes=notes,
        facts={"swtpm": _version(["swtpm", "--version"])},
    )


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"
