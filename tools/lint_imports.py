"""Run import-linter on the source tree.

The editable install's meson-python finder serves `mfpsecd` from a virtual package that
grimp cannot walk; drop it so the import graph is built from the files in the checkout.
"""

import sys
from pathlib import Path

sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "MesonpyMetaFinder"]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from importlinter.cli import lint_imports  # noqa: E402

sys.exit(lint_imports(no_cache=True))
