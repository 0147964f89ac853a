"""The device's addresses and their changes, from rtnetlink, in the board's namespace.

Changes are noticed on a plain netlink socket subscribed to link and address events,
read by the event loop (any message means "look again"); the addresses themselves are
dumped with pyroute2 on the namespace's worker thread. Tentative and deprecated IPv6
addresses count too: the quick filter should admit a network the moment the device is in
it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.ipfilter.backends.netns import NetnsWorker, bursts

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100

Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class RtnetlinkAddresses:
    def __init__(self, netns: str | None, interfaces: tuple[str, ...]) -> None:
        self._worker = NetnsWorker(netns, "rtnetlink")
        self._interfaces = interfaces

    def _dump(self) -> tuple[Address, ...]:
        from pyroute2 import IPRoute  # noqa: PLC0415 (0.2-0.3 s to import: only when used)

        out: list[Address] = []
        with IPRoute() as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            for a in ipr.get_addr():
                if names.get(a["index"]) not in self._interfaces:
                    continue
                value = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
                if value:
                    out.append(ipaddress.ip_interface(f"{value}/{a['prefixlen']}"))
        return tuple(sorted(out, key=lambda x: (x.version, int(x.ip))))

    async def addresses(self) -> tuple[Address, ...]:
        try:
            return await self._worker.call(self._dump)
        except OSError as exc:
            raise MfpsecError(
                ErrorCode.NETWORK_UNAVAILABLE, reason=f"reading addresses: {exc}"
            ) from None

    def _subscribe(self) -> socket.socket:
        s = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )
        s.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        return s

    async def changes(self) -> AsyncIterator[None]:
        """Yields after each burst of link or address events (any message: look again)."""
        sock = await self._worker.call(self._subscribe)
        async with contextlib.aclosing(bursts(sock, lambda _: True)) as events:
            async for _ in events:
                yield None

    def close(self) -> None:
        self._worker.close()
