"""Typed calls of io.mfpsecd.Network."""

from __future__ import annotations

import msgspec

from mfpsecd.api import network
from mfpsecd.client.connection import Connection

_rules = msgspec.json.Decoder(network.Rules)
_ruleset = msgspec.json.Decoder(network.Ruleset)

_IFACE = "io.mfpsecd.Network."


class NetworkClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rules(self) -> network.Rules:
        return _rules.decode(self._conn.call(_IFACE + "GetRules"))

    def _change(self, method: str, params: dict[str, object], confirm: bool) -> network.Rules:
        if confirm:
            params["confirm"] = True
        return _rules.decode(self._conn.call(_IFACE + method, params))

    def allow(self, text: str, *, confirm: bool = False) -> network.Rules:
        return self._change("Allow", {"range": text}, confirm)

    def deny(self, text: str, *, confirm: bool = False) -> network.Rules:
        return self._change("Deny", {"range": text}, confirm)

    def remove(self, text: str, *, confirm: bool = False) -> network.Rules:
        return self._change("Remove", {"range": text}, confirm)

    def quick(self, on: bool, *, confirm: bool = False) -> network.Rules:
        return self._change("SetQuick", {"on": on}, confirm)

    def port(self, service: str, on: bool, *, confirm: bool = False) -> network.Rules:
        return self._change("SetPort", {"service": service, "on": on}, confirm)

    def apply(self) -> network.Rules:
        return _rules.decode(self._conn.call(_IFACE + "Apply"))

    def preview(self) -> str:
        return _ruleset.decode(self._conn.call(_IFACE + "Preview")).nftables_json
