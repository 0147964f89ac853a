"""GetStatus round trips per second and p50/p99 latency, 1 and 8 concurrent clients:

  ours  the real daemon (`mfpsecd run`) on a temporary copy of the simulated board
  (a)   the PyPI varlink package's ThreadingServer, same interface file and status
  (b)   a D-Bus method call through a private dbus-daemon to a dbus_fast (asyncio) server
  (c)   a C echo server over an AF_UNIX stream socket: the floor on this machine

ours, (a) and (c) are driven by the same C load generator (loadgen.c), (b) by its libdbus
twin (dbusgen.c). ours and (c) are also measured with server and client pinned to CPU 0:
on a 2-core machine cross-CPU wake-ups are a large part of a round trip.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import (
    ROOT,
    Contender,
    Finding,
    Metric,
    Metrics,
    Scenario,
    ScenarioResult,
    Settings,
    SuiteResult,
    alternate,
    progress,
    ratio_finding,
)
from bench.ipc import dbus_peer, halt_poll
from bench.ipc.procs import (
    PIN,
    BenchError,
    Server,
    build_all,
    prime_editable_install,
    start_daemon,
    varlink_call,
)

METRICS = (
    Metric("rps", "calls/s", ",.0f"),
    Metric("p50_us", "p50 µs", ",.1f"),
    Metric("p99_us", "p99 µs", ",.1f"),
    Metric("p999_us", "p99.9 µs", ",.1f"),
)
CLIENTS = (1, 8)
P99_TARGET_US = 1000.0
VARLINK_TARGET = 1.2
DBUS_TARGET = 3.0
HALT_POLL_NOTE = (
    "Guest halt-polling: this VM runs with `guest_halt_poll_ns=0` (cpuidle above), so an idle "
    "vCPU halts into the hypervisor at once and each cross-CPU wake-up costs tens of µs; "
    "the unpinned 1-client round trip of every contender is mostly two (ours, (a), (c)) "
    "or four (b: client, bus, service, bus) of those. The `guest halt-polling` scenario "
    "runs the same contenders with the kernel's default window (200 µs, "
    "Documentation/virt/guest-halt-polling.rst) set for each measurement and the "
    "machine's value restored after it: closer to bare metal, where a wake-up costs a "
    "few µs. The daemon does not busy-poll itself: on the controller that would burn "
    "the CPU the print path needs."
)

LABELS = {
    "ours": "ours: mfpsecd",
    "varlink": "(a) varlink 31.0.0 ThreadingServer",
    "dbus": "(b) D-Bus: dbus-daemon + dbus_fast",
    "echo": "(c) C echo, AF_UNIX",
}

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@dataclass
class Peers:
    """The running servers and how to reach them."""

    ours: tuple[Server, Path]
    ours_pinned: tuple[Server, Path]
    varlink: tuple[Server, Path]
    dbus: tuple[Server, str]  # the dbus_fast server, the bus address
    dbus_daemon: Server
    echo: tuple[Server, Path]
    echo_pinned: tuple[Server, Path]
    # (a) and (b) again, every process on CPU 0, so the peers are compared where
    # cross-CPU wake-ups do not dominate.
    varlink_pinned: tuple[Server, Path]
    dbus_pinned: tuple[Server, str]
    dbus_daemon_pinned: Server


def _start(stack: contextlib.ExitStack, tmp: Path, bins: dict[str, Path]) -> Peers:
    def keep(server: Server) -> Server:
        stack.callback(server.stop)
        return server

    def ready(server: Server) -> Server:
        line = server.read_line()
        if line != "ready":
            raise BenchError(f"{server.name}: expected 'ready', got {line!r}")
        return server

    progress("starting servers")
    prime_editable_install()
    ours, ours_sock, reply = start_daemon(tmp / "ours", pinned=False)
    keep(ours)
    ours_pinned, ours_pinned_sock, _ = start_daemon(tmp / "ours-pinned", pinned=True)
    keep(ours_pinned)
    # The peers serve the parameters of our daemon's real reply: same shape and size.
    status = json.loads(reply)["parameters"]
    status_file = tmp / "status.json"
    status_file.write_text(json.dumps(status))
    python = sys.executable

    varlink_sock = tmp / "varlink.sock"
    varlink = ready(
        keep(
            Server(
                "varlink",
                [python, "-m", "bench.ipc.varlink_peer", str(varlink_sock), str(status_file)],
                tmp / "varlink.log",
                cwd=ROOT,
            )
        )
    )
    varlink_pinned_sock = tmp / "varlink-pinned.sock"
    varlink_pinned = ready(
        keep(
            Server(
                "varlink (pinned)",
                [
                    python,
                    "-m",
                    "bench.ipc.varlink_peer",
                    str(varlink_pinned_sock),
                    str(status_file),
                ],
                tmp / "varlink-pinned.log",
                cwd=ROOT,
                pinned=True,
            )
        )
    )
    theirs = json.loads(varlink_call(varlink_sock))["parameters"]
    if set(theirs) != set(status) or theirs["components"] != status["components"]:
        raise BenchError(f"the varlink peer's status differs from ours: {theirs}")

    bus_conf = tmp / "bus.conf"
    bus_conf.write_text(DBUS_CONFIG.format(path=tmp / "bus.sock"))
    dbus_daemon = keep(
        Server(
            "dbus-daemon",
            ["dbus-daemon", f"--config-file={bus_conf}", "--print-address", "--nofork"],
            tmp / "dbus-daemon.log",
        )
    )
    address = dbus_daemon.read_line()
    if not address.startswith("unix:"):
        raise BenchError(f"dbus-daemon printed {address!r}, not an address")
    dbus = ready(
        keep(
            Server(
                "dbus_fast",
                [python, "-m", "bench.ipc.dbus_peer", address, str(status_file)],
                tmp / "dbus_peer.log",
                cwd=ROOT,
            )
        )
    )
    bus_conf_pinned = tmp / "bus-pinned.conf"
    bus_conf_pinned.write_text(DBUS_CONFIG.format(path=tmp / "bus-pinned.sock"))
    dbus_daemon_pinned = keep(
        Server(
            "dbus-daemon (pinned)",
            ["dbus-daemon", f"--config-file={bus_conf_pinned}", "--print-address", "--nofork"],
            tmp / "dbus-daemon-pinned.log",
            pinned=True,
        )
    )
    address_pinned = dbus_daemon_pinned.read_line()
    if not address_pinned.startswith("unix:"):
        raise BenchError(f"dbus-daemon printed {address_pinned!r}, not an address")
    dbus_pinned = ready(
        keep(
            Server(
                "dbus_fast (pinned)",
                [python, "-m", "bench.ipc.dbus_peer", address_pinned, str(status_file)],
                tmp / "dbus_peer-pinned.log",
                cwd=ROOT,
                pinned=True,
            )
        )
    )

    echo_sock, echo_pinned_sock = tmp / "echo.sock", tmp / "echo-pinned.sock"
    echo = ready(
        keep(Server("c-echo", [str(bins["echo_server"]), str(echo_sock)], tmp / "echo.log"))
    )
    echo_pinned = ready(
        keep(
            Server(
                "c-echo (pinned)",
                [str(bins["echo_server"]), str(echo_pinned_sock)],
                tmp / "echo-pinned.log",
                pinned=True,
            )
        )
    )
    return Peers(
        (ours, ours_sock),
        (ours_pinned, ours_pinned_sock),
        (varlink, varlink_sock),
        (dbus, address),
        dbus_daemon,
        (echo, echo_sock),
        (echo_pinned, echo_pinned_sock),
        (varlink_pinned, varlink_pinned_sock),
        (dbus_pinned, address_pinned),
        dbus_daemon_pinned,
    )


def _run_client(
    argv: list[str], servers: list[Server], settings: Settings, pinned: bool
) -> Metrics:
    for s in servers:
        s.check_alive()
    cmd = [*PIN, *argv] if pinned else argv
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            timeout=settings.warmup + settings.seconds + 60,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"client timed out: {' '.join(cmd)}") from None
    if done.returncode != 0:
        logs = "\n".join(f"--- {s.name} log:\n{s.log_tail()}" for s in servers)
        raise BenchError(
            f"client failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()}\n{logs}"
        )
    data = json.loads(done.stdout)
    return {k: float(v) for k, v in data.items()}


def _scenarios(p: Peers, bins: dict[str, Path], settings: Settings) -> list[Scenario]:
    timing = ["-s", f"{settings.seconds:g}", "-w", f"{settings.warmup:g}"]

    def loadgen(
        target: tuple[Server, Path], mode: str, threads: int, pinned: bool
    ) -> Callable[[], Metrics]:
        server, sock = target
        argv = [str(bins["loadgen"]), "-u", str(sock), "-m", mode, "-t", str(threads), *timing]
        return lambda: _run_client(argv, [server], settings, pinned)

    def dbusgen(threads: int, pinned: bool = False) -> Callable[[], Metrics]:
        server, address = p.dbus_pinned if pinned else p.dbus
        bus = p.dbus_daemon_pinned if pinned else p.dbus_daemon
        argv = [
            str(bins["dbusgen"]),
            "-a",
            address,
            "-d",
            dbus_peer.BUS_NAME,
            "-p",
            dbus_peer.OBJECT_PATH,
            "-i",
            dbus_peer.INTERFACE,
            "-M",
            "GetStatus",
            "-g",
            dbus_peer.SIGNATURE,
            "-t",
            str(threads),
            *timing,
        ]
        return lambda: _run_client(argv, [server, bus], settings, pinned)

    out: list[Scenario] = []
    for n in CLIENTS:
        plural = "client" if n == 1 else "clients"
        out.append(
            Scenario(
                f"unpinned-{n}",
                f"{n} {plural}",
                [
                    Contender("ours", LABELS["ours"], loadgen(p.ours, "varlink", n, False)),
                    Contender(
                        "varlink", LABELS["varlink"], loadgen(p.varlink, "varlink", n, False)
                    ),
                    Contender("dbus", LABELS["dbus"], dbusgen(n)),
                    Contender("echo", LABELS["echo"], loadgen(p.echo, "echo", n, False)),
                ],
            )
        )
    for n in CLIENTS:
        plural = "client" if n == 1 else "clients"
        out.append(
            Scenario(
                f"pinned-{n}",
                f"{n} {plural}, pinned to CPU 0",
                [
                    Contender("ours", LABELS["ours"], loadgen(p.ours_pinned, "varlink", n, True)),
                    Contender(
                        "varlink", LABELS["varlink"], loadgen(p.varlink_pinned, "varlink", n, True)
                    ),
                    Contender("dbus", LABELS["dbus"], dbusgen(n, pinned=True)),
                    Contender("echo", LABELS["echo"], loadgen(p.echo_pinned, "echo", n, True)),
                ],
            )
        )
    if halt_poll.adjustable():
        window = halt_poll.KERNEL_DEFAULT_NS
        out.append(
            Scenario(
                "haltpoll-1",
                f"1 client, guest halt-polling {window // 1000} µs",
                [
                    Contender(c.key, c.label, halt_poll.within(window, c.measure))
                    for c in out[0].contenders
                ],
            )
        )
    return out


def _findings(results: dict[str, ScenarioResult]) -> list[Finding]:
    out: list[Finding] = []
    for n, pin in [(n, pin) for pin in ("unpinned", "pinned") for n in CLIENTS]:
        sc = results[f"{pin}-{n}"]
        out.append(
            ratio_finding(
                f"ours / (a) varlink, calls/s, {sc.label}",
                sc,
                "ours",
                "varlink",
                target=VARLINK_TARGET,
            )
        )
        out.append(
            ratio_finding(
                f"ours / (b) D-Bus, calls/s, {sc.label}", sc, "ours", "dbus", target=DBUS_TARGET
            )
        )
    if "haltpoll-1" in results:
        sc = results["haltpoll-1"]
        out.append(
            ratio_finding(
                f"ours / (a) varlink, calls/s, {sc.label}",
                sc,
                "ours",
                "varlink",
                target=VARLINK_TARGET,
            )
        )
        out.append(
            ratio_finding(
                f"ours / (b) D-Bus, calls/s, {sc.label}", sc, "ours", "dbus", target=DBUS_TARGET
            )
        )
    for key in ("unpinned-1", "pinned-1", "haltpoll-1"):
        if key not in results:
            continue
        sc = results[key]
        p99 = sc.median("ours", "p99_us")
        out.append(
            Finding(
                f"ours p99 latency, {sc.label}",
                p99,
                "us",
                f"< {P99_TARGET_US:,.0f} µs",
                p99 < P99_TARGET_US,
                sc.spread("ours", "p99_us"),
            )
        )
    for sc in results.values():
        out.append(
            ratio_finding(
                f"ours as a fraction of (c), calls/s, {sc.label}", sc, "ours", "echo", unit="%"
            )
        )
    return out


def _bimodal(results: dict[str, ScenarioResult]) -> list[str]:
    """Scenarios where the floor itself moved a lot between rounds: the scheduler put
    client and server on one CPU in some rounds and on two in others."""
    notes = []
    for sc in results.values():
        lo, hi = sc.spread("echo", "rps")
        if hi > 1.5 * lo:
            notes.append(
                f"{sc.label}: (c) ranged {lo:,.0f}-{hi:,.0f} calls/s over the rounds, "
                "i.e. client and server shared a CPU in some rounds and not in "
                "others (a cross-CPU wake-up costs tens of µs here). The absolute "
                "medians mix the two cases; the per-round ratios less so, as the "
                "contenders of a round ran back to back. The pinned runs are the "
                "stable comparison against (c)."
            )
    return notes


def _versions() -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return "unknown"
        return out.stdout.splitlines()[0] if out.stdout else "unknown"

    return {
        "cc": first_line(["cc", "--version"]),
        "dbus-daemon": first_line(["dbus-daemon", "--version"]),
        "libdbus (client)": first_line(["pkg-config", "--modversion", "dbus-1"]),
        "varlink (PyPI)": importlib.metadata.version("varlink"),
        "dbus_fast": importlib.metadata.version("dbus_fast"),
        "msgspec": importlib.metadata.version("msgspec"),
    }


def run(settings: Settings) -> SuiteResult:
    progress("building C programs")
    bins = build_all()
    exits: dict[str, int | None] = {}
    with tempfile.TemporaryDirectory(prefix="mfpsecd-bench-") as tmp_name:
        with contextlib.ExitStack() as stack:
            peers = _start(stack, Path(tmp_name), bins)
            results = {}
            for scenario in _scenarios(peers, bins, settings):
                progress(f"scenario {scenario.label}")
                results[scenario.key] = alternate(scenario, settings.rounds)
            servers = [
                peers.ours[0],
                peers.ours_pinned[0],
                peers.varlink[0],
                peers.dbus[0],
                peers.dbus_daemon,
                peers.echo[0],
                peers.echo_pinned[0],
                peers.varlink_pinned[0],
                peers.dbus_pinned[0],
                peers.dbus_daemon_pinned,
            ]
        # The stack has stopped every server (SIGTERM); a clean daemon exits 0.
        exits = {s.name: s.exit_status for s in servers}

    sizes = {key: int(results["unpinned-1"].samples[key][0]["reply_bytes"]) for key in LABELS}
    facts = _versions()
    facts["cpuidle"] = halt_poll.describe()
    facts["reply size (bytes)"] = ", ".join(f"{k} {v}" for k, v in sizes.items())
    notes = [
        "ours, (a) and (c): the same C client (bench/ipc/loadgen.c): one thread and one "
        'connection per client, one call in flight, `{"method":"io.mfpsecd.System.'
        "GetStatus\"}\\0` then read to the reply's NUL; latency per call from "
        "CLOCK_MONOTONIC; percentiles over all calls of a measurement.",
        "(b): the same harness in C with libdbus (bench/ipc/dbusgen.c): a private connection "
        "per thread, dbus_connection_send_with_reply_and_block; the reply is the status as a "
        f"typed D-Bus struct `{dbus_peer.SIGNATURE}` built per call by a dbus_fast "
        "ServiceInterface. The bus is a private dbus-daemon with a permissive session-type "
        "policy (no system-bus policy checks): a best case for D-Bus.",
        "(a) and (b) return our daemon's real GetStatus parameters with a fresh uptime on "
        'each call, as ours does; (a) pretty-prints JSON (`", "` separators), hence its '
        "larger reply.",
        "ours: the daemon as shipped (`mfpsecd run`, uvloop event loop; GetStatus is a plain "
        "handler answered from the read callback, see mfpsecd/varlink/connection.py).",
        "(c): a C server, one blocking thread per connection, echoing a 5-byte message. "
        "It does no work: the cost of the socket round trip and wake-ups alone.",
        "Pinned: `taskset -c 0` for the server (all its threads) and the client. Unpinned "
        "runs use both CPUs; the pinned (a) and (b) run every one of their processes "
        "(dbus-daemon included) on CPU 0 too.",
        "Server exit statuses after SIGTERM: "
        + ", ".join(f"{k} {v}" for k, v in exits.items())
        + ".",
    ]
    if "haltpoll-1" in results:
        notes.append(HALT_POLL_NOTE)
    notes += _bimodal(results)
    bad = {k: v for k, v in exits.items() if k.startswith("mfpsecd") and v != 0}
    if bad:
        notes.append(f"WARNING: the daemon did not exit cleanly on SIGTERM: {bad}")
    return SuiteResult(
        suite="ipc",
        title="GetStatus round trips: mfpsecd vs varlink (PyPI), D-Bus, C floor",
        settings=settings,
        metrics=METRICS,
        scenarios=list(results.values()),
        findings=_findings(results),
        notes=notes,
        facts=facts,
    )
