"""Firmware tree hashing against sha256sum -c and openssl dgst, in one run.

Scenarios, on a tree of about 2,000 files of random content totalling 1 GiB (256 MiB in
the quick run) on the local disk, with a warm cache and, as root, a cold one (caches
dropped before every measurement):
  tree         ours: every file hashed and compared with its expected digest (the engine
               the verifier runs: openat2 under the tree, 1 MiB reads, both cores, large
               files first)  vs  sha256sum -c over a checksum file of the same tree  vs
               openssl dgst -sha256 over the same files
  one file     ours on a single 1 GiB file (one thread: SHA-256 is sequential)  vs
               openssl dgst -sha256
  hybrid       what hybrid ECDSA P-384 + ML-DSA-87 signatures add to a boot, and one
               ML-DSA-87 check beside `openssl pkeyutl -verify` (hybrid.py says how)
  boot         the boot unit's command, `mfpsecd fw-verify --boot`, on a simulated board
               whose slot a is that tree signed with the development key: a process
               start, the board's swtpm started and stopped, the audit log opened, the
               signature, the manifest, every file hashed, the anti-rollback counter read
               and the PCR extended  vs  sha256sum -c over the same tree (what a boot
               script would do with no signature, counter or measurement at all); and the
               same command on a one-file firmware: what a boot pays whatever the size.
Figures are MB/s of file bytes, and seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import (
    ROOT,
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
    timed,
)
from bench.fwverify import hybrid
from mfpsecd import _native
from mfpsecd.firmware.backends.native_hasher import NativeTreeHasher
from mfpsecd.firmware.bundle import sign_bundle

MIB = 1 << 20
METRICS = THROUGHPUT_METRICS
FILES = 2000


def _sizes(total: int, count: int, rng: random.Random) -> list[int]:
    """Log-uniform between 1 KiB and 8 MiB, scaled to the total: a few large binaries and
    many small files, as a firmware image has."""
    raw = [2 ** rng.uniform(10, 23) for _ in range(count)]
    scale = total / sum(raw)
    return [max(1, int(x * scale)) for x in raw]


def _make_tree(root: Path, total: int) -> list[tuple[str, int, bytes]]:
    rng = random.Random(8)
    items = []
    for i, size in enumerate(_sizes(total, FILES, rng)):
        rel = f"d{i % 40:02d}/f{i:04d}.bin"
        path = root / rel
        path.parent.mkdir(exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        items.append((rel, size, hashlib.sha256(data).digest()))
    items.sort(key=lambda t: -t[1])  # large first: the last thread is not left with one
    with (root.parent / "SHA256SUMS").open("w") as f:
        for rel, _, digest in items:
            f.write(f"{digest.hex()}  {rel}\n")
    return items


def _drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _warm(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                while f.read(4 * MIB):
                    pass


class Tree:
    def __init__(
        self, root: Path, items: list[tuple[str, int, bytes]], cold: bool, sums: Path
    ) -> None:
        self.root = root
        self.sums = sums
        self.items = items
        self.size = sum(i[1] for i in items)
        self.cold = cold

    def _prepare(self) -> None:
        if self.cold:
            _drop_caches()

    def ours(self) -> Metrics:
        self._prepare()
        dirfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:

            def run() -> None:
                out = _native.hash_files(dirfd, self.items, 2, True)
                assert all(r[0] == _native.HASH_OK for r in out)

            return timed(self.size, run)
        finally:
            os.close(dirfd)

    def sha256sum(self) -> Metrics:
        self._prepare()
        return timed(
            self.size,
            lambda: subprocess.run(
                ["sha256sum", "--quiet", "-c", str(self.sums)],
                cwd=self.root,
                check=True,
                stdout=subprocess.DEVNULL,
            ),
        )

    def openssl(self) -> Metrics:
        self._prepare()
        return timed(
            self.size,
            lambda: subprocess.run(
                ["openssl", "dgst", "-sha256", *[rel for rel, _, _ in self.items]],
                cwd=self.root,
                check=True,
                stdout=subprocess.DEVNULL,
            ),
        )


class OneFile:
    def __init__(self, path: Path, digest: bytes, cold: bool) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.digest = digest
        self.cold = cold

    def ours(self) -> Metrics:
        if self.cold:
            _drop_caches()
        dirfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:

            def run() -> None:
                out = _native.hash_files(dirfd, [(self.path.name, self.size, self.digest)], 1, True)
                assert out[0][0] == _native.HASH_OK

            return timed(self.size, run)
        finally:
            os.close(dirfd)

    def openssl(self) -> Metrics:
        if self.cold:
            _drop_caches()
        return timed(
            self.size,
            lambda: subprocess.run(
                ["openssl", "dgst", "-sha256", str(self.path)],
                check=True,
                stdout=subprocess.DEVNULL,
            ),
        )


class Boot:
    """The boot unit's command on a simulated board of the bench's own."""

    def __init__(
        self, work: Path, name: str, tree: Path, post_quantum: hybrid.PostQuantumPki | None = None
    ) -> None:
        board = work / f"{name}.toml"
        lib = work / name
        slot = lib / "firmware" / "a"
        slot.mkdir(parents=True)
        tree.rename(slot / "tree")
        self.tree = slot / "tree"
        dev = hybrid.DEV
        self.slot = slot
        sign_bundle(
            slot,
            key=hybrid.dev_signer(),
            certificate_pem=(dev / "dev-signer.pem").read_bytes(),
            hasher=NativeTreeHasher(2),
            product="bench",
            version="1.0",
            epoch=1,
            models=["mfp-sim"],
            created="2026-11-22T00:00:00Z",
            post_quantum=post_quantum.signer if post_quantum is not None else None,
        )
        roots = [str(dev / "dev-root.pem")]
        if post_quantum is not None:
            roots.append(str(post_quantum.root_pem))
        board.write_text(
            f'[board]\nname = "{name}"\nkind = "simulated"\n'
            f'[paths]\nstate_dir = "{lib}"\nrun_dir = "{work / (name + "-run")}"\n'
            f'dev_root = "{work}"\nsys_root = "{work}"\n[tpm]\nbackend = "swtpm"\n'
            f'[firmware]\nmodel = "mfp-sim"\nroots = {json.dumps(roots)}\n'
        )
        config = work / f"{name}-config.toml"
        config.write_text(f'[daemon]\nboard_dir = "{work}"\n')
        self.argv = [
            sys.executable,
            "-m",
            "mfpsecd.daemon.main",
            "fw-verify",
            "--boot",
            "--config",
            str(config),
            "--board",
            str(board),
        ]
        self.size = sum(p.stat().st_size for p in self.tree.rglob("*") if p.is_file())

    def ours(self) -> Metrics:
        def run() -> None:
            r = subprocess.run(self.argv, capture_output=True, text=True, check=False, cwd=ROOT)
            assert r.returncode == 0 and "firmware verified" in r.stdout, r.stderr[-2000:]

        return timed(self.size, run)


HYBRID_TREE = 64 * MIB  # the same 2,000 files, smaller: the signatures are what differs


def _hybrid(
    work: Path, settings: Settings
) -> tuple[list[ScenarioResult], list[Finding], list[str]]:
    """ECDSA-only vs hybrid signatures: the manifest check alone, the whole boot command,
    and one ML-DSA-87 check beside openssl's."""
    pq = hybrid.PostQuantumPki(work)
    boards = {}
    for name, post_quantum in (("ecdsa", None), ("hybrid", pq)):
        tree = work / f"{name}-tree"
        tree.mkdir()
        _make_tree(tree, HYBRID_TREE)
        boards[name] = Boot(work, f"{name}-board", tree, post_quantum)
        _warm(boards[name].tree)
    classical = hybrid.SignatureCheck(boards["ecdsa"].slot, hybrid.dev_roots(), hybrid=False)
    both = hybrid.SignatureCheck(boards["hybrid"].slot, [*hybrid.dev_roots(), pq.root], hybrid=True)
    results = [
        alternate(
            Scenario(
                "signature",
                f"the manifest's signature check before any file is hashed, {hybrid.CHECKS} checks",
                [
                    Contender("ecdsa", "ECDSA P-384 only (no post-quantum root)", classical.ours),
                    Contender("hybrid", "ECDSA P-384 + ML-DSA-87 (post-quantum root)", both.ours),
                ],
            ),
            settings.rounds,
        ),
        alternate(
            Scenario(
                "boot-hybrid",
                f"boot verification, {FILES} files, {HYBRID_TREE // MIB} MiB, warm cache",
                [
                    Contender(
                        "ecdsa", "mfpsecd fw-verify --boot, ECDSA-signed", boards["ecdsa"].ours
                    ),
                    Contender(
                        "hybrid", "mfpsecd fw-verify --boot, hybrid-signed", boards["hybrid"].ours
                    ),
                ],
            ),
            settings.rounds,
        ),
    ]
    sig, boot = results
    per_check = 1000 / hybrid.CHECKS
    ecdsa_ms = sig.median("ecdsa", "seconds") * per_check
    hybrid_ms = sig.median("hybrid", "seconds") * per_check
    added = hybrid_ms - ecdsa_ms
    findings = [
        Finding("signature check, ECDSA P-384 only", ecdsa_ms, "ms"),
        Finding("signature check, hybrid", hybrid_ms, "ms"),
        Finding("hybrid signatures: boot time added", added, "ms", "< 5 ms", added < 5.0),
        Finding(
            "boot command, hybrid minus ECDSA (whole process: noise of a few ms)",
            (boot.median("hybrid", "seconds") - boot.median("ecdsa", "seconds")) * 1000,
            "ms",
        ),
    ]
    notes = [
        "Hybrid: the boot verifier checks the classical signature and chain, then the "
        "ML-DSA-87 signature and its chain to the post-quantum root; the added boot time "
        "is the difference of the two in-process checks (the whole command's difference is "
        "listed too, but its process start and swtpm vary by more than the signatures cost)."
    ]
    openssl = hybrid.openssl_with_mldsa()
    if openssl is None:
        notes.append(
            "openssl pkeyutl: not measured. Debian 12's openssl 3.0 has no ML-DSA; set "
            "MFPSEC_BENCH_OPENSSL to an OpenSSL 3.5 or newer (e.g. built from Debian 13's "
            "openssl source package) to add it."
        )
        return results, findings, notes
    version = subprocess.run(
        [openssl, "version"],
        capture_output=True,
        text=True,
        check=True,
        env=hybrid.openssl_env(openssl),
    )
    check = hybrid.MlDsaVerify(boards["hybrid"].slot, pq.signer_public, openssl)
    mldsa = alternate(
        Scenario(
            "mldsa",
            f"one ML-DSA-87 verification of the manifest's signature, "
            f"{hybrid.OPENSSL_CHECKS} checks",
            [
                Contender("ours", "the daemon's library (cryptography), in process", check.ours),
                Contender(
                    "openssl",
                    f"openssl pkeyutl -verify ({' '.join(version.stdout.split()[:2])}), "
                    "a process each",
                    check.pkeyutl,
                ),
                Contender("process", "openssl version: the process alone", check.process_alone),
            ],
        ),
        settings.rounds,
    )
    results.append(mldsa)
    each = 1000 / hybrid.OPENSSL_CHECKS
    ours_ms = mldsa.median("ours", "seconds") * each
    openssl_ms = mldsa.median("openssl", "seconds") * each
    process_ms = mldsa.median("process", "seconds") * each
    findings += [
        Finding("ML-DSA-87 verify, ours in process", ours_ms, "ms"),
        Finding("ML-DSA-87 verify, openssl pkeyutl (process included)", openssl_ms, "ms"),
        Finding(
            "ML-DSA-87 verify, openssl pkeyutl less its process start",
            openssl_ms - process_ms,
            "ms",
        ),
    ]
    notes.append(
        "ML-DSA-87: ours is one verification in the daemon's process (the key already "
        "loaded); openssl pkeyutl is what a boot script would run: a process that loads "
        "its providers and the PEM key, then verifies. `openssl version` is the process "
        f"alone. The openssl used: {openssl}."
    )
    return results, findings, notes


def run(settings: Settings) -> SuiteResult:
    total = 256 * MIB if settings.quick else 1024 * MIB
    work = Path(tempfile.mkdtemp(prefix="mfpsec-bench-fw-", dir="/var/tmp"))
    results = []
    notes: list[str] = []
    cold_ok = os.geteuid() == 0
    try:
        progress(f"  writing a {total // MIB} MiB tree of {FILES} files")
        tree_root = work / "tree"
        tree_root.mkdir()
        items = _make_tree(tree_root, total)
        big = work / "one.bin"
        hasher = hashlib.sha256()
        with big.open("wb") as f:
            for _ in range(total // (64 * MIB)):
                chunk = os.urandom(64 * MIB)
                hasher.update(chunk)
                f.write(chunk)
        progress("  signing the tree as a simulated board's slot a")
        boot = Boot(work, "board", tree_root)
        tree_root = boot.tree
        tiny_root = work / "tiny"
        tiny_root.mkdir()
        (tiny_root / "firmware.bin").write_bytes(os.urandom(4096))
        tiny = Boot(work, "tiny-board", tiny_root)
        for cold in (False, True) if cold_ok else (False,):
            label = "cold cache" if cold else "warm cache"
            if not cold:
                _warm(tree_root)
                _warm(work)
            tree = Tree(tree_root, items, cold, work / "SHA256SUMS")
            results.append(
                alternate(
                    Scenario(
                        f"tree-{label}",
                        f"{FILES} files, {total // MIB} MiB, {label}",
                        [
                            Contender(
                                "ours", "mfpsecd engine, 2 threads, digests compared", tree.ours
                            ),
                            Contender("sha256sum", "sha256sum -c", tree.sha256sum),
                            Contender(
                                "openssl",
                                "openssl dgst -sha256 (all files, one process)",
                                tree.openssl,
                            ),
                        ],
                    ),
                    settings.rounds,
                )
            )
            one = OneFile(big, hasher.digest(), cold)
            results.append(
                alternate(
                    Scenario(
                        f"one-{label}",
                        f"one {total // MIB} MiB file, {label}",
                        [
                            Contender("ours", "mfpsecd engine", one.ours),
                            Contender("openssl", "openssl dgst -sha256", one.openssl),
                        ],
                    ),
                    settings.rounds,
                )
            )
        _warm(tree_root)
        warm_tree = Tree(tree_root, items, False, work / "SHA256SUMS")
        results.append(
            alternate(
                Scenario(
                    "boot",
                    f"boot verification, {FILES} files, {total // MIB} MiB, warm cache",
                    [
                        Contender(
                            "ours", "mfpsecd fw-verify --boot (whole unit command)", boot.ours
                        ),
                        Contender("sha256sum", "sha256sum -c (hashes only)", warm_tree.sha256sum),
                    ],
                ),
                settings.rounds,
            )
        )
        results.append(
            alternate(
                Scenario(
                    "boot-fixed",
                    "boot verification of a one-file firmware: the fixed cost",
                    [
                        Contender(
                            "ours", "mfpsecd fw-verify --boot (whole unit command)", tiny.ours
                        ),
                    ],
                ),
                settings.rounds,
            )
        )
        progress("  hybrid signatures: two more boards, ECDSA-signed and hybrid-signed")
        pq_results, pq_findings, pq_notes = _hybrid(work, settings)
        if not cold_ok:
            notes.append("Not root: the cold-cache scenarios were skipped.")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    by_key = {sc.key: sc for sc in results}
    findings: list[Finding] = []
    for label in ("warm cache", "cold cache"):
        if f"tree-{label}" not in by_key:
            continue
        tree_sc, one_sc = by_key[f"tree-{label}"], by_key[f"one-{label}"]
        warm = label == "warm cache"
        findings += [
            ratio_finding(
                f"tree vs sha256sum -c, {label}",
                tree_sc,
                "ours",
                "sha256sum",
                target=5.0 if warm else None,
            ),
            ratio_finding(
                f"tree vs openssl dgst, {label}",
                tree_sc,
                "ours",
                "openssl",
                target=1.6 if warm else None,
            ),
            ratio_finding(
                f"one file vs openssl dgst, {label}",
                one_sc,
                "ours",
                "openssl",
                target=0.95 if warm else None,
            ),
        ]
    findings.append(
        ratio_finding(
            "boot unit command vs sha256sum -c, warm cache", by_key["boot"], "ours", "sha256sum"
        )
    )
    fixed = by_key["boot-fixed"].median("ours", "seconds")
    whole = by_key["boot"].median("ours", "seconds")
    findings.append(
        Finding("boot: fixed cost (process, swtpm, audit log, signature, counter, PCR)", fixed, "s")
    )
    findings.append(Finding(f"boot: {total // MIB} MiB firmware, whole command", whole, "s"))
    results += pq_results
    findings += pq_findings
    notes += pq_notes
    notes.append(
        "The boot figures include starting and stopping the simulated board's "
        "swtpm; on a device /dev/tpmrm0 is already there."
    )
    notes.append(
        "Ours hashes each file with OpenSSL's SHA-256 (SHA extensions where the CPU "
        "has them) in 1 MiB reads; sha256sum is Debian's coreutils, which does not "
        "use them."
    )
    return SuiteResult(
        suite="fwverify",
        title="firmware tree hashing vs sha256sum and openssl; hybrid signatures",
        settings=settings,
        metrics=METRICS,
        scenarios=results,
        findings=findings,
        notes=notes,
        facts={
            "files": str(FILES),
            "tree_mib": str(total // MIB),
            "libcrypto": _native.crypto_version(),
        },
    )
