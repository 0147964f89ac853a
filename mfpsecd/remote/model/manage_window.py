"""Monitor and manage modes of the fleet agent (SPEC R-5): monitor (one-way uploads from
the device) unless an administrator opened a manage window, which closes by itself. The
window is kept in wall-clock time, so it survives a restart and closes on time after it.
Pure: the caller passes the time."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mfpsecd.base.access import Privilege


class Mode(enum.Enum):
    MONITOR = "monitor"
    MANAGE = "manage"


class Operation(enum.Enum):
    """What the fleet agent asks before it acts for a remote manager."""

    FIRMWARE_UPDATE = "firmware-update"
    SETTINGS_CHANGE = "settings-change"
    REMOTE_PANEL = "remote-panel"
    UPLOAD = "upload"  # status and counters to the fleet: allowed in monitor mode too


MANAGE_ONLY = frozenset(
    {Operation.FIRMWARE_UPDATE, Operation.SETTINGS_CHANGE, Operation.REMOTE_PANEL}
)
MAX_WINDOW_S = 7 * 86400.0

# What the fleet agent may do in a manage window, as the privileges of the interfaces it
# then calls itself (R-5: remote firmware upgrade and remote settings): nothing of it
# outside one.
MANAGE_PRIVILEGES = frozenset(
    {
        Privilege.FIRMWARE_READ,
        Privilege.FIRMWARE_UPDATE,
        Privilege.NETWORK_READ,
        Privilege.NETWORK_ADMIN,
        Privilege.USB_READ,
        Privilege.USB_ADMIN,
    }
)


@dataclass(frozen=True)
class ManageWindow:
    until: float = 0.0  # POSIX seconds; 0: monitor
    by: str = ""  # who opened it
    opened: float = 0.0

    def mode(self, now: float) -> Mode:
        """Manage only between its opening and its end, and never longer than a window can
        last from now: a wall clock stepped back (an RTC reset at a power cut, before NTP)
        closes the window instead of stretching it."""
        if self.opened <= now < self.until and self.until - now <= MAX_WINDOW_S:
            return Mode.MANAGE
        return Mode.MONITOR

    def allows(self, op: Operation, now: float) -> bool:
        return op not in MANAGE_ONLY or self.mode(now) is Mode.MANAGE
