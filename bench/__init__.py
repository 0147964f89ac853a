"""Side-by-side benchmarks: `python -m bench [suite ...] [--quick]`.

A suite builds scenarios (e.g. "1 client, unpinned"), each with contenders (ours and the
alternatives). The harness measures the contenders of a scenario alternately, round after
round with the order reversed every other round, so a drift of the machine (thermal, noisy
neighbours on a VM) hits every contender alike; it reports the median of the rounds.

To add a suite: a module with `run(settings: Settings) -> SuiteResult`, named in SUITES.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Suite name → module providing run(Settings) -> SuiteResult (imported only when selected).
SUITES: dict[str, str] = {
    "ipc": "bench.ipc.suite",
    "keys": "bench.keys.suite",
    "audit": "bench.audit.suite",
    "auth": "bench.auth.suite",
    "overwrite": "bench.overwrite.suite",
    "aes": "bench.aes.suite",
    "fwverify": "bench.fwverify.suite",
    "netfilter": "bench.netfilter.suite",
    "media": "bench.media.suite",
    "footprint": "bench.footprint.suite",
    "cross": "bench.cross.suite",
    "snmp": "bench.snmp.suite",
}

Metrics = dict[str, float]


@dataclass(frozen=True)
class Settings:
    quick: bool = False
    rounds: int = 5
    seconds: float = 2.0  # length of one measurement
    warmup: float = 0.3  # untimed calls before each measurement

    @classmethod
    def for_run(
        cls, quick: bool, rounds: int | None = None, seconds: float | None = None
    ) -> Settings:
        base = cls(quick=True, rounds=3, seconds=0.3, warmup=0.1) if quick else cls()
        return cls(
            quick=quick,
            rounds=rounds or base.rounds,
            seconds=seconds or base.seconds,
            warmup=base.warmup,
        )


@dataclass(frozen=True)
class Metric:
    key: str
    header: str
    fmt: str  # format spec for the median, e.g. ",.0f"


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    measure: Callable[[], Metrics]


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    contenders: Sequence[Contender]


@dataclass
class ScenarioResult:
    key: str
    label: str
    labels: dict[str, str]  # contender key → label, in declaration order
    samples: dict[str, list[Metrics]]  # contender key → one Metrics per round
    orders: list[list[str]]  # the order the contenders ran in, per round

    def median(self, contender: str, metric: str) -> float:
        return statistics.median(s[metric] for s in self.samples[contender])

    def spread(self, contender: str, metric: str) -> tuple[float, float]:
        values = [s[metric] for s in self.samples[contender]]
        return min(values), max(values)


@dataclass(frozen=True)
class Finding:
    """A derived figure, e.g. a throughput ratio, with its target when there is one."""

    label: str
    value: float
    unit: str  # "x", "us", "%", "MiB", "s"
    target: str = ""
    ok: bool | None = None
    spread: tuple[float, float] | None = None  # min and max over the rounds


@dataclass
class SuiteResult:
    suite: str
    title: str
    settings: Settings
    metrics: Sequence[Metric]
    scenarios: list[ScenarioResult]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)  # suite-specific facts (versions...)


# Throughput suites (bytes through an engine) share these figures and their timing.
THROUGHPUT_METRICS = [Metric("rps", "MB/s", ",.0f"), Metric("seconds", "seconds", ",.2f")]


def throughput(size: int, seconds: float) -> Metrics:
    return {"rps": size / seconds / 1e6, "seconds": seconds}


def timed(size: int, fn: Callable[[], object]) -> Metrics:
    """size bytes through fn, timed once."""
    t0 = time.perf_counter()
    fn()
    return throughput(size, time.perf_counter() - t0)


def latency_stats(samples: list[float]) -> Metrics:
    """Per-call durations (s) → calls/s and p50/p99/max in µs."""
    samples.sort()
    us = [x * 1e6 for x in samples]
    return {
        "rps": len(samples) / sum(samples),
        "p50_us": statistics.median(us),
        "p99_us": us[min(len(us) - 1, int(len(us) * 0.99))],
        "max_us": us[-1],
        "n": float(len(us)),
    }


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def alternate(scenario: Scenario, rounds: int) -> ScenarioResult:
    """Measure every contender once per round; reverse the order every other round."""
    keys = [c.key for c in scenario.contenders]
    result = ScenarioResult(
        scenario.key,
        scenario.label,
        {c.key: c.label for c in scenario.contenders},
        {k: [] for k in keys},
        [],
    )
    for r in range(rounds):
        order = list(scenario.contenders) if r % 2 == 0 else list(reversed(scenario.contenders))
        result.orders.append([c.key for c in order])
        for c in order:
            m = c.measure()
            result.samples[c.key].append(m)
            shown = ", ".join(f"{k}={v:,.1f}" for k, v in m.items() if k in _SHOWN)
            progress(f"  {scenario.key} round {r + 1}/{rounds} {c.key}: {shown}")
    return result


_SHOWN = ("rps", "p50_us", "p99_us")


def paired_ratios(sc: ScenarioResult, num: str, den: str, metric: str) -> list[float]:
    """num/den per round. Both ran in the same round, minutes apart at most, so a shift of
    the machine between rounds (e.g. the scheduler's CPU placement) cancels out."""
    return [a[metric] / b[metric] for a, b in zip(sc.samples[num], sc.samples[den], strict=True)]


def ratio_finding(
    label: str,
    sc: ScenarioResult,
    num: str,
    den: str,
    *,
    metric: str = "rps",
    target: float | None = None,
    unit: str = "x",
) -> Finding:
    """The median of the per-round ratios, with their range; ok when >= target."""
    ratios = paired_ratios(sc, num, den, metric)
    value = statistics.median(ratios)
    spread = (min(ratios), max(ratios))
    if target is None:
        return Finding(label, value, unit, spread=spread)
    return Finding(label, value, unit, f">= {target:g}x", value >= target, spread)


# ---------------------------------------------------------------- facts and reports


def _run_text(cmd: Sequence[str]) -> str | None:
    """The command's stdout, stripped; None when it cannot run or fails."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine_facts() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _run_text(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    # Uncommitted changes to tracked files mean the figures are not exactly that commit's.
    if _run_text(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "kernel": platform.release(),
        "os": _run_text(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or "unknown",
        "python": platform.python_version(),
        "commit": commit,
    }


def _show(value: float, unit: str) -> str:
    if unit == "us":
        return f"{value:,.0f} µs"
    if unit == "ms":
        return f"{value:,.3f} ms"
    if unit == "%":
        return f"{value:.1%}"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.2f}x"


def render_markdown(result: SuiteResult, machine: dict[str, str]) -> str:
    s = result.settings
    lines = [f"# Benchmark `{result.suite}`: {result.title}", ""]
    run = "quick" if s.quick else "full"
    lines.append(
        f"{run} run: {s.rounds} rounds of {s.seconds:g} s per contender "
        f"(+{s.warmup:g} s warm-up), contenders alternated, order reversed every "
        "other round; figures are medians of the rounds."
    )
    lines += ["", "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in {**machine, **result.facts}.items()]
    lines += ["", "## Results", ""]
    first = result.metrics[0]
    head = ["scenario", "contender", *(m.header for m in result.metrics), f"{first.header} min-max"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|")
    for sc in result.scenarios:
        for key, label in sc.labels.items():
            cells = [sc.label, label]
            cells += [format(sc.median(key, m.key), m.fmt) for m in result.metrics]
            lo, hi = sc.spread(key, first.key)
            cells.append(f"{lo:,.0f}-{hi:,.0f}")
            lines.append("| " + " | ".join(cells) + " |")
    if result.findings:
        lines += [
            "",
            "## Ratios and targets",
            "",
            "Ratios are medians of the per-round ratios (contenders of a round ran "
            "back to back); the range is over the rounds.",
            "",
            "| figure | value | rounds min-max | target | met |",
            "|---|---:|---:|---|---|",
        ]
        for f in result.findings:
            spread = (
                ""
                if f.spread is None
                else (f"{_show(f.spread[0], f.unit)} - {_show(f.spread[1], f.unit)}")
            )
            met = "" if f.ok is None else ("yes" if f.ok else "**NO**")
            lines.append(
                f"| {f.label} | {_show(f.value, f.unit)} | {spread} | {f.target} | {met} |"
            )
    if result.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def to_json(result: SuiteResult, machine: dict[str, str]) -> dict[str, Any]:
    return {
        "suite": result.suite,
        "title": result.title,
        "machine": machine,
        "facts": result.facts,
        "settings": vars(result.settings),
        "scenarios": [
            {
                "key": sc.key,
                "label": sc.label,
                "orders": sc.orders,
                "contenders": {
                    key: {
                        "label": label,
                        "median": {m.key: sc.median(key, m.key) for m in result.metrics},
                        "rounds": sc.samples[key],
                    }
                    for key, label in sc.labels.items()
                },
            }
            for sc in result.scenarios
        ],
        "findings": [vars(f) for f in result.findings],
        "notes": result.notes,
    }


def write_results(result: SuiteResult, out_dir: Path) -> tuple[Path, Path]:
    machine = machine_facts()
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{result.suite}.md"
    js = out_dir / f"{result.suite}.json"
    md.write_text(render_markdown(result, machine))
    js.write_text(json.dumps(to_json(result, machine), indent=2) + "\n")
    return md, js


SuiteRun = Callable[[Settings], SuiteResult]


def load_suite(name: str) -> SuiteRun:
    module = importlib.import_module(SUITES[name])
    run: SuiteRun = module.run
    return run
