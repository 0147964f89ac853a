"""The engines' pace on the controller's instruction sets, under qemu-user, beside the
same program built for this machine (issue 26, item 3: a sanity check only).

`mfp-engine-rate` (native/bench/engine_rate.c) runs one engine for a measurement's
length: the random pass's AES-256-CTR stream, a stored object's segmented AES-256-GCM
(64 KiB segments, one thread), the overwrite engine writing random passes over a file in
the page cache, and an Argon2id verifier at the daemon's default cost. The same source
is built three times: for this machine (build/ctest) and, by `make test-cross`, for
arm64 and armhf, which run under qemu-aarch64-static / qemu-arm-static.

Emulation translates every instruction and has no AES or PMULL instructions to give the
guest (AES-NI does the host's native work): the ratios say that the ARM builds run the
engines at a workable pace, and how far an emulator is from the silicon, never what a
controller does. README ("What to measure on real silicon") lists what to measure there.
"""

from __future__ import annotations

import subprocess

from bench import (
    ROOT,
    Contender,
    Metric,
    Metrics,
    Scenario,
    Settings,
    SuiteResult,
    alternate,
    progress,
    ratio_finding,
)

BUILD = ROOT / "build"
ENGINES = {
    "keystream": "random pass stream (AES-256-CTR)",
    "gcm": "object encryption (AES-256-GCM, 64 KiB segments, 1 thread)",
    "overwrite": "overwrite engine, random passes to the page cache",
    "argon2id": "Argon2id verifier (19 MiB, t=2, 1 lane), per second",
}
TARGETS = {
    "native": ("this machine (x86-64, native)", "ctest", None, None),
    "arm64": (
        "arm64 under qemu-aarch64",
        "cross-arm64",
        "qemu-aarch64-static",
        "aarch64-linux-gnu",
    ),
    "armhf": ("armhf under qemu-arm", "cross-armhf", "qemu-arm-static", "arm-linux-gnueabihf"),
}


def _command(target: str) -> list[str]:
    _, build, qemu, triplet = TARGETS[target]
    exe = BUILD / build / "native" / "mfp-engine-rate"
    if not exe.is_file():
        raise RuntimeError(f"{exe} is missing: run `make test-cross` (and `make test-native`)")
    if qemu is None:
        return [str(exe)]
    arch = build.removeprefix("cross-")
    libs = BUILD / "sysroot" / arch / "usr" / "lib" / str(triplet)
    return [qemu, "-L", f"/usr/{triplet}", "-E", f"LD_LIBRARY_PATH={libs}", str(exe)]


def _build(target: str) -> None:
    build = BUILD / TARGETS[target][1]
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "meson"),
            "compile",
            "-C",
            str(build),
            "native/mfp-engine-rate",
        ],
        check=True,
        capture_output=True,
    )


def _measure(target: str, engine: str, seconds: float) -> Metrics:
    out = subprocess.run(
        [*_command(target), engine, f"{seconds:g}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds * 10 + 120,
    ).stdout.split()
    return {"rps": float(out[1]), "seconds": seconds}


def run(settings: Settings) -> SuiteResult:
    for target in TARGETS:
        if not (BUILD / TARGETS[target][1] / "build.ninja").is_file():
            raise RuntimeError(f"build/{TARGETS[target][1]} is not set up: run `make test-cross`")
        _build(target)
    scenarios = []
    findings = []
    for engine, label in ENGINES.items():
        progress(f"cross: {engine}")
        scenario = Scenario(
            engine,
            label,
            [
                Contender(
                    t,
                    TARGETS[t][0],
                    lambda t=t, e=engine: _measure(t, e, settings.seconds),  # type: ignore[misc]
                )
                for t in TARGETS
            ],
        )
        result = alternate(scenario, settings.rounds)
        scenarios.append(result)
        for arch in ("arm64", "armhf"):
            # How many times slower the emulated build is (native / emulated).
            findings.append(
                ratio_finding(f"{engine}: native / {arch} under qemu-user", result, "native", arch)
            )
    return SuiteResult(
        "cross",
        "the engines built for arm64 and armhf under qemu-user, beside the native build",
        settings,
        [Metric("rps", "MB/s (hashes/s)", ",.1f"), Metric("seconds", "seconds", ",.1f")],
        scenarios,
        findings,
        notes=[
            "A sanity check, not a performance figure: qemu-user translates every "
            "instruction and offers the guest no AES or PMULL instructions, which the "
            "native build uses (AES-NI). Every engine ran to completion with the same "
            "results as natively (make test-cross checks the results).",
            "The emulated figures are no estimate of a controller: an ARMv8 core with the "
            "Crypto Extensions runs AES in hardware, an ARMv7 core has no AES instructions "
            "at all; measure on the board (README, 'What to measure on real silicon').",
        ],
    )
