"""The AES engines against OpenSSL's own speed test, raw dd, and a Python loop, in one run.

Scenarios:
  GCM, 16 KiB    ours memory->memory (16 KiB segments) on 1 and 2 threads  vs
                 `openssl speed -evp aes-256-gcm -bytes 16384` of the system libcrypto the
                 engine links  and the `cryptography` wheel's AESGCM (its bundled OpenSSL)
                 on 16 KiB and 1 MiB calls
  put 1 GiB      a 1 GiB object from a file descriptor (the source in /dev/shm) sealed into
                 a file on the local disk with 64 KiB segments, 2 threads, fdatasync  vs
                 dd oflag=direct bs=4M of the same bytes to the same disk  vs  a Python loop
                 over cryptography's AESGCM doing the same put with the same segment size
  put with scan  a 128 MiB object put through the virus scan (a real clamd, INSTREAM)  vs
                 the same put without it  vs  `clamdscan --stream` of the same file to the
                 same clamd (V-4)
  XTS            ours over 4 KiB sectors (one thread)  vs  `openssl speed -evp aes-256-xts
                 -bytes 4096`
Figures are MB/s of plaintext.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.hazmat.backends.openssl import backend as wheel_backend
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import (
    THROUGHPUT_METRICS,
    Contender,
    Finding,
    Metrics,
    Scenario,
    ScenarioResult,
    Settings,
    SuiteResult,
    alternate,
    progress,
    ratio_finding,
    throughput,
    timed,
)
from mfpsecd import _native
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.log_format import DAEMON
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import SystemClock
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.paths import Paths
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.secrets import SecretStore
from mfpsecd.scan.backends.clamd import Clamd
from mfpsecd.scan.model.outcome import FailurePolicy, RxOption
from mfpsecd.scan.service import ScanSettings, VirusScan
from mfpsecd.store.backends.native_objects import NativeObjectCipher
from mfpsecd.store.service import JobStore, ObjectKind
from mfpsecd.wipe.backends.disks import SysfsDiskInventory
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter
from mfpsecd.wipe.certificates import DeviceName
from mfpsecd.wipe.model.overwrite_plan import Medium
from mfpsecd.wipe.service import WipeService
from tests.support.clamd import clamd

MIB = 1 << 20
METRICS = THROUGHPUT_METRICS
CONTEXT = b"bench-object"


_SPEED = re.compile(r"^AES-256-(?:GCM|XTS)\s+([\d.]+)k\s*$", re.MULTILINE)


def _openssl_speed(cipher: str, block: int, seconds: float, procs: int = 1) -> Metrics:
    """OpenSSL's own figure (its table is in 1000s of bytes per second); procs > 1 runs
    that many processes at once (-multi) and reports their sum."""
    secs = max(1, round(seconds))
    multi = ["-multi", str(procs)] if procs > 1 else []
    out = subprocess.run(
        ["openssl", "speed", *multi, "-evp", cipher, "-bytes", str(block), "-seconds", str(secs)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = _SPEED.search(out)
    if match is None:
        raise RuntimeError(f"unexpected openssl speed output: {out[-300:]}")
    rate = float(match.group(1)) * 1000
    return {"rps": rate / 1e6, "seconds": float(secs)}


class Memory:
    """A buffer sealed again and again for about `seconds`."""

    def __init__(self, size: int, seconds: float) -> None:
        self.data = os.urandom(size)
        self.key = os.urandom(32)
        self.seconds = seconds
        self.out = bytearray(_native.stream_sealed_size(size, 14))
        self.xts_out = bytearray(size)
        self.xts_key = os.urandom(64)

    def _repeat(self, once: Callable[[], object]) -> Metrics:
        done, t0 = 0, time.perf_counter()
        while True:
            once()
            done += len(self.data)
            elapsed = time.perf_counter() - t0
            if elapsed >= self.seconds:
                return throughput(done, elapsed)

    def ours_gcm(self, threads: int) -> Metrics:
        return self._repeat(
            lambda: _native.stream_seal(self.key, CONTEXT, 14, threads, self.data, self.out, None)
        )

    def wheel_gcm(self, chunk: int) -> Metrics:
        gcm = AESGCM(self.key)
        view = memoryview(self.data)
        nonce = bytes(12)

        def once() -> None:
            for off in range(0, len(view), chunk):
                gcm.encrypt(nonce, view[off : off + chunk], CONTEXT)

        return self._repeat(once)

    def ours_xts(self) -> Metrics:
        return self._repeat(
            lambda: _native.xts_sectors(self.xts_key, 0, 4096, self.data, self.xts_out, True)
        )


class StoreStack:
    """The real job store (software keys, flash medium: a delete only unlinks) on the
    local disk, driven from this thread through its own event loop."""

    def __init__(self, root: Path, clamd_socket: str = "") -> None:
        self.loop = asyncio.new_event_loop()
        self.root = root
        self.clamd_socket = clamd_socket
        self.store: JobStore | None = None
        self.store_scan: VirusScan | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        clock = SystemClock()
        health = HealthRegistry(clock)
        state = SqliteState(self.root / "state.sqlite3")
        await state.open()
        auditor = Auditor(AuditFile(self.root / "audit"), clock, health, state)
        await auditor.start()
        chain = KeyChain(state, SoftwareKeys(self.root), NativeKeyCrypto(), clock, health)
        SecretStore(state, chain, clock)
        await chain.start()
        paths = Paths(
            state_dir=self.root, run_dir=self.root, dev_root=self.root, sys_root=Path("/sys")
        )

        async def no_signer(digest: bytes) -> None:
            return None

        wipe = WipeService(
            state,
            SysfsDiskInventory([], paths, simulated=False),
            NativeOverwriter(),
            auditor,
            clock,
            signer=no_signer,
            identities=chain.identities,
            device=DeviceName("bench", "bench", "bench"),
            tool="bench",
        )
        self.store = JobStore(
            state,
            chain,
            NativeObjectCipher(threads=2, segment_shift=16),
            auditor,
            clock,
            crypto=NativeKeyCrypto(),
            job_data=wipe.job_data,
            directory=self.root / "store",
            medium=Medium.SSD,
            scan=self._scan(clock, health, auditor),
        )
        await self.store.start()
        if self.store_scan is not None:
            await self.store_scan.check()
        self._closers = [auditor.stop, chain.close, state.close]

    def _scan(
        self, clock: SystemClock, health: HealthRegistry, auditor: Auditor
    ) -> VirusScan | None:
        if self.clamd_socket:
            self.store_scan = VirusScan(
                Clamd(self.clamd_socket, 60.0),
                ScanSettings("clamd", RxOption.DELETE, FailurePolicy.REFUSE, 0.0),
                clock=clock,
                health=health,
                auditor=auditor,
            )
        return self.store_scan

    def put(self, src: int) -> None:
        assert self.store is not None
        self.loop.run_until_complete(
            self.store.put(src, owner="bench", job="bench", kind=ObjectKind.SPOOL, name="1 GiB")
        )

    def clear(self) -> None:
        assert self.store is not None
        self.loop.run_until_complete(self.store.purge(DAEMON))

    def close(self) -> None:
        for close in self._closers:
            self.loop.run_until_complete(close())
        self.loop.close()


class Put:
    """One object from a descriptor into a file on the local disk, made durable."""

    SEG = 64 * 1024

    def __init__(self, source: Path, work: Path, size: int) -> None:
        self.source = source
        self.target = work / "object"
        self.size = size

    def _fresh(self) -> int:
        self.target.unlink(missing_ok=True)
        return os.open(self.target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def ours(self, store: StoreStack) -> Metrics:
        src = os.open(self.source, os.O_RDONLY)
        try:
            metrics = timed(self.size, lambda: store.put(src))
        finally:
            os.close(src)
        store.clear()
        return metrics

    def python_loop(self) -> Metrics:
        key = os.urandom(32)
        gcm = AESGCM(key)
        src, dst = os.open(self.source, os.O_RDONLY), self._fresh()

        def put() -> None:
            prefix = os.urandom(8)
            i = 0
            while True:
                chunk = os.read(src, self.SEG)
                if not chunk:
                    break
                nonce = prefix + i.to_bytes(4, "big")
                os.write(dst, gcm.encrypt(nonce, chunk, CONTEXT))
                i += 1
            os.fdatasync(dst)

        try:
            return timed(self.size, put)
        finally:
            os.close(src)
            os.close(dst)

    def dd(self) -> Metrics:
        self.target.unlink(missing_ok=True)
        return timed(
            self.size,
            lambda: subprocess.run(
                [
                    "dd",
                    f"if={self.source}",
                    f"of={self.target}",
                    "bs=4M",
                    "oflag=direct",
                    "status=none",
                ],
                check=True,
            ),
        )


def _scanned_put(settings: Settings, shm: Path, work: Path) -> ScenarioResult:
    size = 16 * MIB if settings.quick else 128 * MIB
    source = shm / "scan-source"
    source.write_bytes(os.urandom(size))
    progress(f"  put with scan, {size // MIB} MiB, through a real clamd")
    with clamd(work / "av", stream_max=256 * MIB) as av:
        plain, scanned = StoreStack(work / "plain"), StoreStack(work / "scanned", av.socket)
        conf = work / "av" / "clamd.conf"

        def put(store: StoreStack) -> Metrics:
            src = os.open(source, os.O_RDONLY)
            try:
                metrics = timed(size, lambda: store.put(src))
            finally:
                os.close(src)
            store.clear()
            return metrics

        def clamdscan() -> Metrics:
            def once() -> None:
                done = subprocess.run(
                    ["clamdscan", f"--config-file={conf}", "--stream", "--no-summary", str(source)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"clamdscan: {done.stdout}{done.stderr}")

            return timed(size, once)

        try:
            # clamd's first streams after its start are slower (its scratch, its
            # threads): one untimed run of each before the rounds.
            put(scanned)
            clamdscan()
            return alternate(
                Scenario(
                    "put-scan",
                    f"put {size // MIB} MiB with the virus scan (clamd INSTREAM)",
                    [
                        Contender(
                            "ours-scan", "mfpsecd job store put through clamd", lambda: put(scanned)
                        ),
                        Contender("ours", "the same put, no scan", lambda: put(plain)),
                        Contender("clamdscan", "clamdscan --stream of the same file", clamdscan),
                    ],
                ),
                max(settings.rounds, 7),  # one put per round: more rounds than the rest
            )
        finally:
            plain.close()
            scanned.close()


def run(settings: Settings) -> SuiteResult:
    mem_size = 8 * MIB  # in and out together stay in the 32 MiB L3, as openssl speed's do
    put_size = 128 * MIB if settings.quick else 1024 * MIB
    rounds = settings.rounds
    seconds = settings.seconds
    mem = Memory(mem_size, seconds)
    results = []
    progress("  GCM memory to memory")
    results.append(
        alternate(
            Scenario(
                "gcm-16k",
                "AES-256-GCM, 16 KiB segments/blocks, memory",
                [
                    Contender("ours-1t", "mfpsecd engine, 1 thread", lambda: mem.ours_gcm(1)),
                    Contender("ours-2t", "mfpsecd engine, 2 threads", lambda: mem.ours_gcm(2)),
                    Contender(
                        "openssl",
                        "openssl speed -evp aes-256-gcm -bytes 16384 (system 3.0)",
                        lambda: _openssl_speed("aes-256-gcm", 16384, seconds),
                    ),
                    Contender(
                        "openssl-2p",
                        "the same, -multi 2 (two processes at once)",
                        lambda: _openssl_speed("aes-256-gcm", 16384, seconds, 2),
                    ),
                    Contender(
                        "wheel-16k",
                        "cryptography AESGCM, 16 KiB calls (wheel's OpenSSL)",
                        lambda: mem.wheel_gcm(16384),
                    ),
                    Contender(
                        "wheel-1m",
                        "cryptography AESGCM, 1 MiB calls (wheel's OpenSSL)",
                        lambda: mem.wheel_gcm(MIB),
                    ),
                ],
            ),
            rounds,
        )
    )
    progress("  XTS memory to memory")
    results.append(
        alternate(
            Scenario(
                "xts",
                "AES-256-XTS, 4 KiB sectors, memory",
                [
                    Contender("ours", "mfpsecd engine, 1 thread", mem.ours_xts),
                    Contender(
                        "openssl",
                        "openssl speed -evp aes-256-xts -bytes 4096",
                        lambda: _openssl_speed("aes-256-xts", 4096, seconds),
                    ),
                ],
            ),
            rounds,
        )
    )
    work = Path(tempfile.mkdtemp(prefix="mfpsec-bench-aes-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="mfpsec-bench-aes-", dir="/dev/shm"))
    try:
        progress(f"  preparing a {put_size // MIB} MiB source in /dev/shm")
        source = shm / "source"
        with source.open("wb") as f:
            for _ in range(put_size // (64 * MIB) or 1):
                f.write(os.urandom(min(64 * MIB, put_size)))
        put = Put(source, work, put_size)
        store = StoreStack(work / "store-state")
        results.append(
            alternate(
                Scenario(
                    "put",
                    f"put {put_size // MIB} MiB from a file descriptor to the local disk",
                    [
                        Contender(
                            "ours",
                            "mfpsecd job store put (64 KiB segments, 2 threads, O_DIRECT, "
                            "linked and committed)",
                            lambda: put.ours(store),
                        ),
                        Contender("dd", "dd oflag=direct bs=4M (no encryption)", put.dd),
                        Contender(
                            "python",
                            "Python loop over cryptography AESGCM, 64 KiB, fdatasync",
                            put.python_loop,
                        ),
                    ],
                ),
                rounds,
            )
        )
        store.close()
        results.append(_scanned_put(settings, shm, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)

    by_key = {sc.key: sc for sc in results}
    gcm, xts, put_sc = by_key["gcm-16k"], by_key["xts"], by_key["put"]
    scan_sc = by_key["put-scan"]
    findings: list[Finding] = [
        ratio_finding(
            "GCM 1 thread vs openssl speed, 16 KiB (same libcrypto)",
            gcm,
            "ours-1t",
            "openssl",
            target=0.9,
        ),
        ratio_finding("GCM 2 threads vs 1 thread", gcm, "ours-2t", "ours-1t", target=1.7),
        ratio_finding(
            "the machine's own: openssl speed -multi 2 vs 1 process", gcm, "openssl-2p", "openssl"
        ),
        ratio_finding(
            "the wheel's OpenSSL (1 MiB calls) vs the system's (openssl speed)",
            gcm,
            "wheel-1m",
            "openssl",
        ),
        ratio_finding("XTS vs openssl speed, 4 KiB", xts, "ours", "openssl"),
        ratio_finding(
            f"put {put_size // MIB} MiB vs dd oflag=direct", put_sc, "ours", "dd", target=0.8
        ),
        ratio_finding(
            f"put {put_size // MIB} MiB vs a Python AESGCM loop",
            put_sc,
            "ours",
            "python",
            target=1.3,
        ),
        ratio_finding(
            "put with scan vs clamdscan --stream of the same file (same clamd)",
            scan_sc,
            "ours-scan",
            "clamdscan",
            target=0.8,
        ),
        ratio_finding("put with scan vs put without", scan_sc, "ours-scan", "ours"),
    ]
    notes = [
        "openssl speed runs in its own process for the whole measurement on one 16 KiB "
        "buffer; ours seal an 8 MiB buffer (16 KiB segments) repeatedly for the same time, "
        "so input and output stay in the L3 cache as openssl's do. With buffers far larger "
        "than the cache (256 MiB) two threads are bounded by this VM's memory bandwidth.",
        "GCM with 16 KiB segments adds per segment what openssl speed adds per block: one "
        "IV set-up, the associated data (header, final flag, context) and the tag.",
        "The put source sits in /dev/shm so the figure is the write side. Ours is the job "
        "store's whole put: an O_TMPFILE file written with O_DIRECT, fdatasync, linked, "
        "fsync of the directory, the key sealed and committed. The Python loop writes "
        "through the page cache and fdatasyncs at the end; dd writes with O_DIRECT.",
        "Put with scan: the data is copied in 1 MiB chunks to clamd (INSTREAM) and to "
        "the sealer through a pipe at once; the object is linked after clamd's verdict. "
        "clamd (StreamMaxLength 256 MiB, its scratch on /dev/shm, the test database: the "
        "EICAR hash and one body signature) spools the stream before scanning; the source "
        "is random bytes, so clamd's figure is its spool and pattern match, not a "
        "format-aware scan of real documents.",
    ]
    return SuiteResult(
        suite="aes",
        title="AES engines vs openssl speed, dd and a Python loop",
        settings=settings,
        metrics=METRICS,
        scenarios=results,
        findings=findings,
        notes=notes,
        facts={
            "system_libcrypto": _native.crypto_version(),
            "wheel_openssl": wheel_backend.openssl_version_text(),
            "put_mib": str(put_size // MIB),
        },
    )
