"""What the monitoring settings need from the daemon: something that builds everything
that reports (SIEM forwarders, the alert notifier, the SNMP subagent) from a
configuration, refusing it before anything runs, and then swaps it in; and whether a
named secret is stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from mfpsecd.base.config.schema import Config

Commit = Callable[[], Awaitable[None]]


class Reporting(Protocol):
    @property
    def running(self) -> bool:
        """Its parts run: a change can be swapped in (not while the daemon starts)."""
        ...

    async def prepare(self, cfg: Config) -> Commit:
        """Build everything from cfg (CONFIG_INVALID when a part cannot be built);
        nothing of it runs until the commit that is returned is awaited."""
        ...


# The names of the secrets in the secret store (never their values), read once per use.
StoredSecrets = Callable[[], Awaitable[frozenset[str]]]
