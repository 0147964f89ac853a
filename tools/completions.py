"""Write a shell completion script for `mfpsec` or `mfpsecd` (meson runs it at build time:
`python tools/completions.py PROG SHELL OUT`). The script asks the program itself for
candidates at run time (click's protocol), so it never goes stale."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from click.shell_completion import get_completion_class

PROGRAMS = {"mfpsec": "mfpsecd.cli.main", "mfpsecd": "mfpsecd.daemon.main"}


def main() -> int:
    prog, shell, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    completion = get_completion_class(shell)
    if completion is None:
        raise SystemExit(f"no completion for shell {shell!r}")
    cli = importlib.import_module(PROGRAMS[prog]).cli
    var = f"_{prog.upper()}_COMPLETE"
    out.write_text(completion(cli, {}, prog, var).source())
    return 0


if __name__ == "__main__":
    sys.exit(main())
