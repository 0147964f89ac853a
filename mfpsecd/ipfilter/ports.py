"""What the IP filter needs from outside: the kernel's packet filter and the board's
addresses. Backends (backends/) implement them; wiring.py picks them by board profile."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from mfpsecd.base.addresses import Range


class Netfilter(Protocol):
    """The kernel's packet filter: one table of ours, replaced whole."""

    async def apply(self, commands: list[dict[str, Any]]) -> None:
        """Replace the table in one transaction; NETWORK_APPLY_FAILED leaves the old one."""
        ...

    async def present(self) -> bool: ...

    async def refused(self) -> dict[str, int]:
        """Refused packets per source address (the filter's own counters)."""
        ...

    async def ruleset(self, *, terse: bool = False) -> list[dict[str, Any]]:
        """Our table as the kernel has it, as nftables JSON (terse: no set elements)."""
        ...

    async def swap_intervals(
        self, swaps: Sequence[tuple[str, Sequence[Range], Sequence[Range]]]
    ) -> bool:
        """Per (interval set, intervals out, intervals in), in one transaction and without
        reading the sets; False when a set was not as expected, NETWORK_APPLY_FAILED when
        refused otherwise: either way the sets are as they were."""
        ...

    def changes(self) -> AsyncIterator[None]:
        """Yields after each burst of changes to our table, whoever made them."""
        ...

    async def ban(self, set_name: str, element: Any, seconds: int) -> None:
        """An element (nftables JSON) into a ban set for `seconds`; again restarts it."""
        ...

    async def unban(self, set_name: str, element: Any) -> bool: ...

    async def banned(self, set_name: str) -> list[tuple[Any, int]]:
        """A ban set's elements (nftables JSON) with the seconds each has left."""
        ...

    def close(self) -> None: ...


class DeviceAddresses(Protocol):
    """The addresses of the board's network interfaces, and when they change."""

    async def addresses(self) -> tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]: ...

    def changes(self) -> AsyncIterator[None]: ...

    def close(self) -> None: ...
