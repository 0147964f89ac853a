"""Every filesystem root the daemon touches, from the board profile: nothing else names
/dev, /sys, /proc or /var."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """Every filesystem root the daemon touches, from the board profile."""

    state_dir: Path
    run_dir: Path
    dev_root: Path
    sys_root: Path
    proc_root: Path = Path("/proc")
    # The running kernel's sysfs. A simulated board's sys_root is a tree of its own, but
    # its image files are the host's, attached to the host's loop devices.
    host_sys_root: Path = Path("/sys")
    store_dir: Path | None = None  # the job store; by default under state_dir
    firmware_dir: Path | None = None  # A/B slots; by default under state_dir

    @property
    def job_store(self) -> Path:
        return self.store_dir if self.store_dir is not None else self.state_dir / "store"

    @property
    def firmware_slots(self) -> Path:
        return self.firmware_dir if self.firmware_dir is not None else (self.state_dir / "firmware")

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.sqlite3"

    @property
    def default_socket(self) -> Path:
        return self.run_dir / "mfpsecd.sock"
