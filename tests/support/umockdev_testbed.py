"""A umockdev testbed run by one of the scripts beside this module (umockdev_bed.py: a
USB stick with its block devices; umockdev_usb.py: the recorded USB devices), driven
over its stdin: each command is answered `ok` once its uevents have been sent.

The scripts run under umockdev-wrapper (the testbed checks its own /sys through the
preload library) and the *system* python3, which has Debian's python3-gi and
gir1.2-umockdev-1.0; PyGObject for this GLib is not in the venv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent

requires_umockdev = pytest.mark.skipif(
    shutil.which("umockdev-wrapper") is None or not Path(SYSTEM_PYTHON).exists(),
    reason="umockdev is not installed (make setup installs it)",
)


class UmockdevBed:
    def __init__(self, script: str) -> None:
        self.proc = subprocess.Popen(
            ["umockdev-wrapper", SYSTEM_PYTHON, str(HERE / script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.dir = self.proc.stdout.readline().strip()  # UMOCKDEV_DIR for the process under test
        assert self.dir, "umockdev testbed did not start"

    def send(self, *words: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
