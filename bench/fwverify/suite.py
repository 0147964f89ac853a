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
Figures are MB/s of file bytes. What a boot adds (signature, manifest, the verifier
process) is measured with the boot verifier itself once it exists; this is the part that
grows with the firmware.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import (
    THROUGHPUT_METRICS,
    Contender,
    Finding,
    Metrics,
    Scenario,
    Settings,
    SuiteResult,
    alternate,
    progress,
    ratio_finding,
    timed,
)
from mfpsecd import _native

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
    def __init__(self, root: Path, items: list[tuple[str, int, bytes]], cold: bool) -> None:
        self.root = root
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
        return timed(self.size, lambda: subprocess.run(
            ["sha256sum", "--quiet", "-c", str(self.root.parent / "SHA256SUMS")],
            cwd=self.root, check=True, stdout=subprocess.DEVNULL))

    def openssl(self) -> Metrics:
        self._prepare()
        return timed(self.size, lambda: subprocess.run(
            ["openssl", "dgst", "-sha256", *[rel for rel, _, _ in self.items]],
            cwd=self.root, check=True, stdout=subprocess.DEVNULL))


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
                out = _native.hash_files(dirfd, [(self.path.name, self.size, self.digest)],
                                         1, True)
                assert out[0][0] == _native.HASH_OK
            return timed(self.size, run)
        finally:
            os.close(dirfd)

    def openssl(self) -> Metrics:
        if self.cold:
            _drop_caches()
        return timed(self.size, lambda: subprocess.run(
            ["openssl", "dgst", "-sha256", str(self.path)], check=True,
            stdout=subprocess.DEVNULL))


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
        for cold in (False, True) if cold_ok else (False,):
            label = "cold cache" if cold else "warm cache"
            if not cold:
                _warm(tree_root)
                _warm(work)
            tree = Tree(tree_root, items, cold)
            results.append(alternate(Scenario(f"tree-{label}", f"{FILES} files, "
                                              f"{total // MIB} MiB, {label}", [
                Contender("ours", "mfpsecd engine, 2 threads, digests compared", tree.ours),
                Contender("sha256sum", "sha256sum -c", tree.sha256sum),
                Contender("openssl", "openssl dgst -sha256 (all files, one process)",
                          tree.openssl),
            ]), settings.rounds))
            one = OneFile(big, hasher.digest(), cold)
            results.append(alternate(Scenario(f"one-{label}", f"one {total // MIB} MiB file, "
                                              f"{label}", [
                Contender("ours", "mfpsecd engine", one.ours),
                Contender("openssl", "openssl dgst -sha256", one.openssl),
            ]), settings.rounds))
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
            ratio_finding(f"tree vs sha256sum -c, {label}", tree_sc, "ours", "sha256sum",
                          target=5.0 if warm else None),
            ratio_finding(f"tree vs openssl dgst, {label}", tree_sc, "ours", "openssl",
                          target=1.6 if warm else None),
            ratio_finding(f"one file vs openssl dgst, {label}", one_sc, "ours", "openssl",
                          target=0.95 if warm else None),
        ]
    notes.append("Ours hashes each file with OpenSSL's SHA-256 (SHA extensions where the CPU "
                 "has them) in 1 MiB reads; sha256sum is Debian's coreutils, which does not "
                 "use them.")
    return SuiteResult(suite="fwverify", title="firmware tree hashing vs sha256sum and openssl",
                       settings=settings, metrics=METRICS, scenarios=results,
                       findings=findings, notes=notes,
                       facts={"files": str(FILES), "tree_mib": str(total // MIB),
                              "libcrypto": _native.crypto_version()})
