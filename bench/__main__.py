"""`python -m bench [suite ...] [--quick]`: run benchmark suites, write bench/results/."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import (
    RESULTS_DIR,
    SUITES,
    Settings,
    load_suite,
    machine_facts,
    progress,
    render_markdown,
    write_results,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Side-by-side benchmarks. Full runs write bench/results/<suite>.md and "
        ".json; --quick is a smoke run that prints its table and writes files "
        "only with --out.",
    )
    parser.add_argument(
        "suites",
        nargs="*",
        metavar="suite",
        help=f"suites to run (default: all): {', '.join(SUITES)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short measurements and fewer rounds (about 30 s)"
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--seconds", type=float, help="override the length of a measurement")
    parser.add_argument(
        "--out", type=Path, help=f"results directory (default: {RESULTS_DIR} for full runs)"
    )
    args = parser.parse_args(argv)

    names = args.suites or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(SUITES)}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be positive")
    settings = Settings.for_run(args.quick, args.rounds, args.seconds)
    out_dir: Path | None = args.out or (None if args.quick else RESULTS_DIR)

    for name in names:
        progress(
            f"bench {name}: {settings.rounds} rounds x {settings.seconds:g} s "
            f"({'quick' if settings.quick else 'full'})"
        )
        started = time.monotonic()
        result = load_suite(name)(settings)
        progress(f"bench {name}: done in {time.monotonic() - started:.0f} s")
        if out_dir is None:
            print(render_markdown(result, machine_facts()))
        else:
            md, js = write_results(result, out_dir)
            print(md.read_text())
            progress(f"bench {name}: wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
