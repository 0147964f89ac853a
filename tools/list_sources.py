"""Print the package's files (Python sources and interface files) for meson to install.

    tools/list_sources.py mfpsecd [--leave-out PART ...]

--leave-out drops an optional part's own modules (meson options snmp, card_login, pdf;
mfpsecd/base/optional.py says what each part needs at run time)."""

import argparse
from pathlib import Path

# Each optional part's modules: nothing else imports them at module level.
PART_FILES = {
    "snmp": ("alerts/snmp_trap.py",),
    "card_login": (
        "auth/backends/pkcs11_card.py",
        "firmware/backends/pkcs11_key.py",
    ),
    "pdf": ("wipe/backends/certificate_pdf.py", "system/report_pdf.py"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--leave-out", action="append", default=[], choices=sorted(PART_FILES))
    args = parser.parse_args()
    root: Path = args.package
    skipped = {root / f for part in args.leave_out for f in PART_FILES[part]}
    for path in sorted(root.rglob("*")):
        if path in skipped or "__pycache__" in path.parts:
            continue
        if path.suffix in {".py", ".pyi", ".varlink", ".typed"}:
            print(path.as_posix())


if __name__ == "__main__":
    main()
