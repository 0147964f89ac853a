"""The KVM guest's halt-polling window (cpuidle-haltpoll), which sets what a cross-CPU
wake-up costs inside a virtual machine.

With the window at 0 an idle vCPU halts at once: the next wake-up is an IPI through the
hypervisor and a VM entry, tens of µs on the development VM, and the 1-client unpinned
round trip is mostly two of those. The kernel's default window is 200 µs
(Documentation/virt/guest-halt-polling.rst); on bare metal, such as the printer's
controller, a wake-up costs a few µs either way. The suite measures the 1-client run again
with the kernel's default window so the two costs can be told apart; the machine's own
setting is restored after every measurement.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

PARAM = Path("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
DRIVER = Path("/sys/devices/system/cpu/cpuidle/current_driver")
KERNEL_DEFAULT_NS = 200_000

T = TypeVar("T")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def describe() -> str:
    """For the machine table: the cpuidle driver and the halt-polling window."""
    driver = _read(DRIVER) or "unknown"
    window = _read(PARAM)
    return driver if window is None else f"{driver}, guest_halt_poll_ns={window}"


def adjustable() -> bool:
    """True in a guest whose window is off and that we may change (root)."""
    return _read(PARAM) == "0" and os.access(PARAM, os.W_OK)


@contextlib.contextmanager
def window(ns: int) -> Iterator[None]:
    before = _read(PARAM)
    if before is None:
        raise OSError(f"{PARAM} is not readable")
    PARAM.write_text(f"{ns}\n")
    try:
        yield
    finally:
        PARAM.write_text(f"{before}\n")


def within(ns: int, measure: Callable[[], T]) -> Callable[[], T]:
    """measure, run with the window set to ns and put back afterwards."""

    def run() -> T:
        with window(ns):
            return measure()

    return run
