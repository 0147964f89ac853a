"""Benchmark `footprint`: what the idle daemon costs a controller, installed as on a device
(the wheel and its runtime dependencies only), beside fwupd and usbguard-daemon idling on
the same machine in the same run.

Each contender starts, says it is ready (ours: READY=1 on $NOTIFY_SOCKET, as systemd
hears it; fwupd: "ready for requests"), idles for the settle time, and is read from /proc:
RSS then (steady), its high-water mark (peak, start-up included), the shared libraries it
maps. Plus the time to import the daemon's main module and the installed size.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
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
from bench.footprint import probes
from bench.footprint.install import device_venv, installed_mib
from bench.ipc.procs import write_sim_board

METRICS = [
    Metric("rss", "steady RSS MiB", ",.1f"),
    Metric("hwm", "peak RSS MiB", ",.1f"),
    Metric("anon", "anonymous MiB", ",.1f"),
    Metric("pss", "PSS MiB", ",.1f"),
    Metric("libs", "shared libraries", ",.0f"),
    Metric("ready", "exec to ready s", ",.2f"),
]
TARGET_RSS_MIB = 40.0
TARGET_PEAK_MIB = 60.0
TARGET_READY_S = 0.5


def _settle(settings: Settings) -> float:
    return 3.0 if settings.quick else 15.0


def _ours(venv: Path, settings: Settings) -> Metrics:
    with tempfile.TemporaryDirectory(prefix="mfp-fp-") as d, probes.notify_socket() as (path, sock):
        config, board = write_sim_board(Path(d) / "sim")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["NOTIFY_SOCKET"] = path
        argv = [
            str(venv / "bin" / "mfpsecd"),
            "run",
            "--config",
            str(config),
            "--board",
            str(board),
        ]
        t0 = time.monotonic()
        proc = probes.popen(argv, Path(d) / "daemon.log", env)
        try:
            probes.wait_ready(sock, proc, 60)
            ready = time.monotonic() - t0
            time.sleep(_settle(settings))
            return {**probes.memory(proc.pid), "ready": ready}
        finally:
            probes.stop(proc)


def _fwupd(settings: Settings) -> Metrics:
    with tempfile.TemporaryDirectory(prefix="mfp-fw-") as d:
        bus = f"unix:path={d}/bus"
        dbus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", f"--address={bus}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus}
            log = Path(d) / "fwupd.log"
            t0 = time.monotonic()
            proc = probes.popen(["/usr/libexec/fwupd/fwupd"], log, env)
            try:
                probes.wait_line(log, proc, "ready for requests", 60)
                ready = time.monotonic() - t0
                time.sleep(_settle(settings))
                return {**probes.memory(proc.pid), "ready": ready}
            finally:
                probes.stop(proc)
        finally:
            probes.stop(dbus)


def _usbguard(settings: Settings) -> Metrics:
    """usbguard-daemon with an empty rule set. This VM has no USB bus: it runs in a mount
    namespace with an empty /sys/bus/usb/devices, as on a controller with nothing plugged."""
    with tempfile.TemporaryDirectory(prefix="mfp-ug-") as d:
        rules, conf = Path(d) / "rules.conf", Path(d) / "daemon.conf"
        rules.write_text("")
        conf.write_text(
            f"RuleFile={rules}\nImplicitPolicyTarget=block\nPresentDevicePolicy=apply-policy\n"
            f"IPCAllowedUsers=root\nAuditBackend=FileAudit\nAuditFilePath={d}/audit.log\n"
        )
        for f in (rules, conf):
            f.chmod(0o600)
        script = (
            "mount -t tmpfs none /sys && mkdir -p /sys/bus/usb/devices && "
            f"exec usbguard-daemon -c {conf} -k"
        )
        proc = probes.popen(["unshare", "-m", "sh", "-c", script], Path(d) / "usbguard.log")
        try:
            pid = probes.find_child(proc, "usbguard-daemon")
            time.sleep(_settle(settings))
            if proc.poll() is not None:
                raise RuntimeError((Path(d) / "usbguard.log").read_text()[-500:])
            return {**probes.memory(pid), "ready": float("nan")}
        finally:
            probes.stop(proc)


# What the daemon's memory is made of: the interpreter, then each layer it imports on top
# of the one before, measured in the device install's own interpreter.
LAYERS = [
    ("python", "the interpreter (python -c pass)", ""),
    ("asyncio", "+ asyncio and ssl (the system's libssl)", "import asyncio, ssl"),
    ("crypto", "+ cryptography (its own OpenSSL)", "import asyncio, ssl, cryptography.x509"),
    ("tpm", "+ tpm2-pytss (ESAPI)", "import asyncio, ssl, cryptography.x509, tpm2_pytss"),
    ("daemon", "+ everything the daemon imports", "import mfpsecd.daemon.lifecycle"),
]
_PROBE = (
    "import time; t = time.perf_counter(); {code}\n"
    "import json, re; s = open('/proc/self/status').read()\n"
    "k = dict(re.findall(r'^(VmRSS|VmHWM|RssAnon):\\s+(\\d+)', s, re.M))\n"
    "libs = {{l.split()[-1] for l in open('/proc/self/maps') if '.so' in l}}\n"
    "print(json.dumps({{'rss': int(k['VmRSS']) / 1024, 'hwm': int(k['VmHWM']) / 1024, "
    "'anon': int(k['RssAnon']) / 1024, 'pss': float('nan'), 'libs': len(libs), "
    "'ready': time.perf_counter() - t}}))"
)


def _layer(venv: Path, code: str) -> Metrics:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _PROBE.format(code=code or "pass")],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return {k: float(v) for k, v in json.loads(out.stdout).items()}


def _import_seconds(venv: Path, rounds: int) -> float:
    """Importing the daemon's main module, less the interpreter's own start."""
    py = str(venv / "bin" / "python")

    def once(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([py, "-c", code], check=True, cwd="/")
        return time.perf_counter() - t0

    full = [once("import mfpsecd.daemon.main") for _ in range(rounds)]
    bare = [once("pass") for _ in range(rounds)]
    return statistics.median(full) - statistics.median(bare)


def _target(label: str, value: float, unit: str, limit: float) -> Finding:
    return Finding(label, value, unit, f"<= {limit:g} {unit}", value <= limit)


def run(settings: Settings) -> SuiteResult:
    progress("footprint: building the wheel and its runtime-only venv")
    venv = device_venv()
    contenders = [
        Contender("ours", "mfpsecd (sim board, device install)", lambda: _ours(venv, settings))
    ]
    if shutil.which("/usr/libexec/fwupd/fwupd") and shutil.which("dbus-daemon"):
        contenders.append(Contender("fwupd", "fwupd (Debian 12 package)", lambda: _fwupd(settings)))
    if shutil.which("usbguard-daemon"):
        contenders.append(
            Contender("usbguard", "usbguard-daemon (Debian 12)", lambda: _usbguard(settings))
        )
    idle = alternate(Scenario("idle", "idle daemon", contenders), settings.rounds)
    layers = alternate(
        Scenario(
            "imports",
            "what the imports cost (exec to ready: the import's time)",
            [
                Contender(k, label, functools.partial(_layer, venv, code))
                for k, label, code in LAYERS
            ],
        ),
        settings.rounds,
    )
    ours_rss = idle.median("ours", "rss")
    findings = [
        _target("steady RSS of the idle daemon", ours_rss, "MiB", TARGET_RSS_MIB),
        _target("peak RSS (start-up included)", idle.median("ours", "hwm"), "MiB", TARGET_PEAK_MIB),
        _target("exec to READY=1", idle.median("ours", "ready"), "s", TARGET_READY_S),
    ]
    for peer in ("fwupd", "usbguard"):
        if peer in idle.labels:
            findings.append(
                ratio_finding(f"steady RSS, ours / {peer}", idle, "ours", peer, metric="rss")
            )
    findings.append(
        Finding(
            "import of mfpsecd.daemon.main (less the interpreter's start)",
            _import_seconds(venv, max(3, settings.rounds)),
            "s",
        )
    )
    findings.append(
        Finding("installed size (venv: Python, dependencies, mfpsecd)", installed_mib(venv), "MiB")
    )
    return SuiteResult(
        suite="footprint",
        title="the idle daemon's memory, libraries and start-up, beside fwupd and usbguard",
        settings=settings,
        metrics=METRICS,
        scenarios=[idle, layers],
        findings=findings,
        notes=[
            f"Each contender idles {_settle(settings):g} s after it is ready before it is read.",
            "Ours runs on a copy of the simulated board: its swtpm is a separate process and "
            "not counted (a device has a TPM chip); the sim board's firmware is not hashed at "
            "start (that is the boot unit's fw-verify), so exec to READY is the daemon's own.",
            "usbguard-daemon prints no ready line: its exec-to-ready is not measured (nan).",
            "The imports scenario runs each layer in a fresh interpreter of the device "
            "install and reads its own /proc (PSS not read: nan); the steps between rows "
            "are what each layer adds. The daemon's steady RSS is above it by what it "
            "allocates once running (state, caches, threads).",
            "The installed size counts the venv's own Python files and every runtime "
            "dependency's wheel as installed; a Debian package adds nothing the daemon maps.",
        ],
    )
