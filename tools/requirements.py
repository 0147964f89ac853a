"""Print the requirements that pyproject.toml declares, one per line, for pip's -r.

`make setup` installs the dependencies first, each sdist built in its own isolated
environment, and only then the project itself without build isolation. This keeps one
list of dependencies (pyproject.toml) instead of a second one that could drift.

    tools/requirements.py [--build] [--extra NAME ...]

--build adds the build-system requirements (meson-python, meson, ninja), which the
editable install needs in the venv because it is built without isolation.
"""

import argparse
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: dict[str, object], *, build: bool, extras: list[str]) -> list[str]:
    project = pyproject["project"]
    assert isinstance(project, dict)
    out: list[str] = []
    if build:
        system = pyproject["build-system"]
        assert isinstance(system, dict)
        out += system["requires"]
    out += project["dependencies"]
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            sys.exit(f"requirements: pyproject.toml declares no extra {extra!r}")
        out += optional[extra]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument(
        "--pyproject", type=Path, default=Path(__file__).resolve().parents[1] / "pyproject.toml"
    )
    args = parser.parse_args()
    data = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))
    print("\n".join(requirements(data, build=args.build, extras=args.extra)))


if __name__ == "__main__":
    main()
