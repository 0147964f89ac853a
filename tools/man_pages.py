"""Write the man pages of `mfpsec` and `mfpsecd` from their click commands (meson runs it
at build time: `python tools/man_pages.py PROG OUT`), so the page says exactly what
`--help` says. One page per program, each subcommand a section, as ip(8) or nft(8) read.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import os
import sys
from pathlib import Path

import click

PROGRAMS = {
    "mfpsec": ("mfpsecd.cli.main", "8", "the MFP security daemon's maintenance CLI"),
    "mfpsecd": ("mfpsecd.daemon.main", "8", "the MFP controller's security daemon"),
}


def _roff(text: str) -> str:
    """Text as roff: backslashes doubled, a leading dot or quote made literal."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _prose(text: str | None) -> str:
    """A docstring as paragraphs: dedented, click's \\b markers dropped."""
    paragraphs = inspect.cleandoc(text or "").split("\n\n")
    kept = ["\n".join(ln for ln in p.splitlines() if ln.strip() != "\b") for p in paragraphs]
    return "\n.PP\n".join(_roff(p) for p in kept if p.strip())


def _options(ctx: click.Context, cmd: click.Command) -> list[str]:
    out: list[str] = []
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or "--help" in param.opts:
            continue
        names, help_text = record
        out += [".TP", f"\\fB{_roff(names)}\\fR", _roff(help_text or "")]
    return out


def _arguments(cmd: click.Command) -> str:
    return " ".join(
        f"\\fI{p.human_readable_name}\\fR" for p in cmd.params if isinstance(p, click.Argument)
    )


def _section(ctx: click.Context, path: list[str], cmd: click.Command) -> list[str]:
    out: list[str] = []
    if len(path) > 1 and not isinstance(cmd, click.Group):
        usage = _roff(" ".join(path[1:]))
        synopsis = f"\\fB{path[0]} {usage}\\fR [\\fIOPTIONS\\fR] {_arguments(cmd)}"
        out += [f".SS {usage}", synopsis.rstrip(), ".PP", _prose(cmd.help or cmd.short_help)]
        out += _options(ctx, cmd)
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = click.Context(sub, info_name=name, parent=ctx)
            out += _section(sub_ctx, [*path, name], sub)
    return out


def page(prog: str) -> str:
    module, number, summary = PROGRAMS[prog]
    cli = importlib.import_module(module).cli
    ctx = click.Context(cli, info_name=prog)
    # SOURCE_DATE_EPOCH: a reproducible page in a reproducible package.
    when = dt.datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")), dt.UTC)
    lines = [
        f'.TH {prog.upper()} {number} "{when:%Y-%m-%d}" "mfpsecd" "System Administration"',
        ".SH NAME",
        f"{prog} \\- {summary}",
        ".SH SYNOPSIS",
        f"\\fB{prog}\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        _prose(cli.help),
        ".SH OPTIONS",
        *_options(ctx, cli),
        ".SH COMMANDS",
        *_section(ctx, [prog], cli),
        ".SH SEE ALSO",
        "\\fBmfpsec\\fR(8), \\fBmfpsecd\\fR(8), /usr/share/doc/mfpsecd/README.md",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    prog, out = sys.argv[1], Path(sys.argv[2])
    out.write_text(page(prog))
    return 0


if __name__ == "__main__":
    sys.exit(main())
