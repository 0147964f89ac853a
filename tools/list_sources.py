"""Print the package's files (Python sources and interface files) for meson to install."""

import sys
from pathlib import Path

root = Path(sys.argv[1])
for path in sorted(root.rglob("*")):
    if path.suffix in {".py", ".pyi", ".varlink", ".typed"} and "__pycache__" not in path.parts:
        print(path.as_posix())
