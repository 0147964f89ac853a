from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import daemon as daemon_support
from tests.support.netlab import Lab, lab

pytest_plugins = ["tests.support.no_skip", "tests.support.traceability"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # CI runs as root and must run everything; elsewhere skip with the reason.
    is_root = os.geteuid() == 0
    for item in items:
        if "root" in item.keywords and not is_root:
            item.add_marker(pytest.mark.skip(reason="needs root (setpriv to other uids)"))
        if "systemd" in item.keywords and shutil.which("systemd-analyze") is None:
            item.add_marker(pytest.mark.skip(reason="systemd-analyze not installed"))


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory: AF_UNIX socket paths are limited to 107 bytes."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="mfp-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon(short_tmp: Path) -> Iterator[daemon_support.DaemonProcess]:
    with daemon_support.running(short_tmp / "d") as d:
        yield d


@pytest.fixture
def netlab() -> Iterator[Lab]:
    """Two throwaway network namespaces, the device and a peer (tests.support.netlab)."""
    with lab() as lab_:
        yield lab_
