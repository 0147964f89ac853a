"""The overwrite engine against dd, scrub and shred on the same target, in one run.

Scenarios, each on a pre-allocated 2 GiB file on the local disk (and, as root, on a loop
device over another such file):
  zero pass    ours: one 0x00 pass (O_DIRECT, 4 MiB chunks, checkpoint flush every 1 GiB
               as the sanitization job does)  vs  dd if=/dev/zero oflag=direct bs=4M
  random pass  ours: one AES-256-CTR pass  vs  dd oflag=direct bs=4M copying pre-generated
               random data from /dev/shm (storage here may write zeros faster than data, so
               like is compared with like: the RNG must never be the bottleneck)
  mode 3       ours: DoD 5220.22-M as a sanitization job runs it (0x00, 0xFF, random, full
               read-back)  vs  scrub -p dod (the same four steps)  vs  shred -n 2 -z
Figures are MB/s of target bytes (for mode 3: target size / total time). Peak RSS of the
engine is measured in a child process running a random pass and its verify over 2 GiB and
over 128 MiB: it must not grow with the target.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter, NativeOverwriteTarget
from mfpsecd.wipe.model.overwrite_plan import DISCARD_MODES, PassKind
from mfpsecd.wipe.ports import PassSpec

MIB = 1 << 20
FULL_SIZE = 2048 * MIB
QUICK_SIZE = 256 * MIB
SYNC_EVERY = 1024 * MIB  # the sanitization job's checkpoint cadence

METRICS = THROUGHPUT_METRICS


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Target:
    """One target path and our engine open on it."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        fd = os.open(path, os.O_RDWR)
        self.ours = NativeOverwriteTarget(fd, path.name)
        self.overwriter = NativeOverwriter()

    def ours_pass(self, kind: PassKind) -> Metrics:
        spec = PassSpec(kind, 0, self.overwriter.new_key() if kind is PassKind.RANDOM else b"")
        progress_ = self.ours.new_progress()
        return timed(
            self.size, lambda: self.ours.write_pass(0, self.size, spec, progress_, SYNC_EVERY)
        )

    def ours_mode3(self) -> Metrics:
        def run() -> None:
            last = PassSpec(PassKind.BYTE)
            for p in DISCARD_MODES[3].passes:
                key = self.overwriter.new_key() if p.kind is PassKind.RANDOM else b""
                last = PassSpec(p.kind, p.byte, key)
                self.ours.write_pass(0, self.size, last, self.ours.new_progress(), SYNC_EVERY)
            self.ours.verify(0, self.size, last, self.ours.new_progress())

        return timed(self.size, run)

    def dd(self, source: str) -> Metrics:
        count = self.size // (4 * MIB)
        return timed(
            self.size,
            lambda: _run(
                [
                    "dd",
                    f"if={source}",
                    f"of={self.path}",
                    "bs=4M",
                    f"count={count}",
                    "oflag=direct",
                    "conv=notrunc",
                    "status=none",
                ]
            ),
        )

    def scrub_dod(self) -> Metrics:
        return timed(self.size, lambda: _run(["scrub", "-f", "-S", "-p", "dod", str(self.path)]))

    def shred(self) -> Metrics:
        return timed(self.size, lambda: _run(["shred", "-n", "2", "-z", str(self.path)]))

    def close(self) -> None:
        self.ours.close()


def _allocate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def _random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // (64 * MIB)):
            f.write(os.urandom(64 * MIB))


@contextlib.contextmanager
def _loop_device(backing: Path) -> Iterator[Path]:
    # Direct I/O from the loop driver to its backing file: writes reach the disk as on a real
    # block device, instead of completing in the backing file's page cache.
    out = subprocess.run(
        ["losetup", "--find", "--show", "--direct-io=on", str(backing)],
        check=True,
        capture_output=True,
        text=True,
    )
    dev = Path(out.stdout.strip())
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", str(dev)], check=False)


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so a child would report the
# bench process's own peak; the high-water mark belongs to the new address space.
RSS_CHILD = """
import os, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter, NativeOverwriteTarget
from mfpsecd.wipe.model.overwrite_plan import PassKind
from mfpsecd.wipe.ports import PassSpec
path, size = sys.argv[1], int(sys.argv[2])
before = hwm()
t = NativeOverwriteTarget(os.open(path, os.O_RDWR), "rss")
spec = PassSpec(PassKind.RANDOM, 0, NativeOverwriter().new_key())
t.write_pass(0, size, spec, t.new_progress(), 256 << 20)
t.verify(0, size, spec, t.new_progress())
print(before, hwm())
"""


def _peak_rss_mib(path: Path, size: int) -> tuple[float, float]:
    """(interpreter + imports before the engine ran, peak after a pass and its verify)."""
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(path), str(size)],
        check=True,
        capture_output=True,
        text=True,
    )
    before, peak = (int(x) / 1024 for x in out.stdout.split())
    return before, peak


def _scenarios(t: Target, shm_random: Path, where: str, with_mode3: bool) -> list[Scenario]:
    out = [
        Scenario(
            f"zero-{where}",
            f"one 0x00 pass, {where}",
            [
                Contender("ours", "mfpsecd engine", lambda: t.ours_pass(PassKind.BYTE)),
                Contender("dd", "dd if=/dev/zero oflag=direct bs=4M", lambda: t.dd("/dev/zero")),
            ],
        ),
        Scenario(
            f"random-{where}",
            f"one random pass, {where}",
            [
                Contender(
                    "ours", "mfpsecd engine (AES-256-CTR)", lambda: t.ours_pass(PassKind.RANDOM)
                ),
                Contender(
                    "dd",
                    "dd from /dev/shm random, oflag=direct bs=4M",
                    lambda: t.dd(str(shm_random)),
                ),
            ],
        ),
    ]
    if with_mode3:
        out.append(
            Scenario(
                f"mode3-{where}",
                f"mode 3 (DoD, 4 steps with verify), {where}",
                [
                    Contender("ours", "mfpsecd mode 3 + verify", t.ours_mode3),
                    Contender("scrub", "scrub -p dod", t.scrub_dod),
                    Contender("shred", "shred -n 2 -z", t.shred),
                ],
            )
        )
    return out


def run(settings: Settings) -> SuiteResult:
    size = QUICK_SIZE if settings.quick else FULL_SIZE
    rounds = settings.rounds
    work = Path(tempfile.mkdtemp(prefix="mfpsec-bench-overwrite-", dir="/var/tmp"))
    shm_random = Path(tempfile.mkdtemp(prefix="mfpsec-bench-", dir="/dev/shm")) / "random"
    results = []
    findings: list[Finding] = []
    notes: list[str] = []
    try:
        progress(f"  preparing {size // MIB} MiB targets and random data")
        _random_file(shm_random, size)
        file_path = work / "target.img"
        _allocate(file_path, size)
        target = Target(file_path, size)
        try:
            for sc in _scenarios(target, shm_random, "file", with_mode3=True):
                results.append(alternate(sc, rounds))
        finally:
            target.close()
        before, peak_big = _peak_rss_mib(file_path, size)
        _allocate(work / "small.img", 128 * MIB)
        _, peak_small = _peak_rss_mib(work / "small.img", 128 * MIB)
        file_path.unlink()
        if os.geteuid() == 0 and shutil.which("losetup"):
            backing = work / "loop.img"
            _allocate(backing, size)
            with _loop_device(backing) as dev:
                target = Target(dev, size)
                try:
                    for sc in _scenarios(target, shm_random, "loop device", with_mode3=False):
                        results.append(alternate(sc, rounds))
                finally:
                    target.close()
        else:
            notes.append("Not root: the loop-device scenarios were skipped.")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm_random.parent, ignore_errors=True)

    by_key = {sc.key: sc for sc in results}
    for where in ("file", "loop device"):
        if f"zero-{where}" not in by_key:
            continue
        findings.append(
            ratio_finding(
                f"zero pass vs dd, {where} (throughput)",
                by_key[f"zero-{where}"],
                "ours",
                "dd",
                target=0.95,
            )
        )
        findings.append(
            ratio_finding(
                f"random pass vs dd of pre-generated random, {where}",
                by_key[f"random-{where}"],
                "ours",
                "dd",
                target=0.95,
            )
        )
    m3 = by_key["mode3-file"]
    findings.append(
        ratio_finding("mode 3 with verify vs scrub -p dod (speed)", m3, "ours", "scrub", target=2.0)
    )
    findings.append(
        ratio_finding(
            "mode 3 with verify vs shred -n 2 -z (speed; shred does not verify)",
            m3,
            "ours",
            "shred",
        )
    )
    findings.append(
        Finding(
            f"peak RSS, random pass + verify over {size // MIB} MiB",
            peak_big,
            "MiB",
            "< 64 MiB",
            peak_big < 64,
        )
    )
    findings.append(Finding("peak RSS, the same over 128 MiB", peak_small, "MiB"))
    findings.append(
        Finding("of which the interpreter and imports before the engine ran", before, "MiB")
    )
    notes.append(
        f"Target size {size // MIB} MiB, pre-allocated (posix_fallocate) on the "
        "local disk; the loop device sits on another such file."
    )
    notes.append(
        "Our passes flush (fdatasync) every 1 GiB and at the end, the durable "
        "checkpoints a resumable wipe needs; dd is run without conv=fdatasync as "
        "the issue names it, so it does strictly less."
    )
    notes.append(
        "scrub -p dod: 0x00, 0xFF, random, then verify (scrub's own description); "
        "shred -n 2 -z: two random passes then zeros, no verify."
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return SuiteResult(
        suite="overwrite",
        title="overwrite engine vs dd, scrub and shred",
        settings=settings,
        metrics=METRICS,
        scenarios=results,
        findings=findings,
        notes=notes,
        facts={
            "target_mib": str(size // MIB),
            "bench_process_maxrss_mib": f"{usage.ru_maxrss / 1024:.0f}",
        },
    )
