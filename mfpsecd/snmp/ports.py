"""What the subagent needs from the rest of the daemon: the facts it serves, read when
the master agent asks (the composition root reads them from the capabilities)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mfpsecd.snmp.model.facts import Facts

FactsSource = Callable[[], Awaitable[Facts]]
