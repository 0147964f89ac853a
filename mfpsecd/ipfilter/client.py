"""Typed calls of io.mfpsecd.Network."""

from __future__ import annotations

import msgspec

from mfpsecd.ipfilter import api as network
from mfpsecd.varlink.client import Connection

_rules = msgspec.json.Decoder(network.Rules)
_ruleset = msgspec.json.Decoder(network.Ruleset)
_imported = msgspec.json.Decoder(network.Imported)
_LISTS = ("permitted", "refused", "effective_permitted", "effective_refused")

_IFACE = "io.mfpsecd.Network."


class NetworkClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rules(self, offset: int = 0, limit: int = network.PAGE) -> network.Rules:
        """The rules with each list of ranges cut to [offset, offset + limit)."""
        return _rules.decode(self._conn.call(_IFACE + "GetRules",
                                             {"offset": offset, "limit": limit}))

    def all_rules(self) -> network.Rules:
        """The rules with the whole lists, page by page."""
        first = self.rules()
        lists: dict[str, list[str]] = {k: list(getattr(first, k)) for k in _LISTS}
        offset = network.PAGE
        while any(offset < getattr(first, f"{k}_total") for k in _LISTS):
            page = self.rules(offset)
            for k in _LISTS:
                lists[k] += getattr(page, k)
            offset += network.PAGE
        return msgspec.structs.replace(first, **lists)

    def import_ranges(self, fd: int, which: str, *, replace: bool = False,
                      confirm: bool = False) -> network.Imported:
        """Everything readable from fd (one range per line) into the "permitted" or
        "refused" list."""
        params: dict[str, object] = {"descriptor": self._conn.pass_descriptor(fd),
                                     "list": which, "replace": replace}
        if confirm:
            params["confirm"] = True
        return _imported.decode(self._conn.call(_IFACE + "Import", params))

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

    def unban(self, text: str) -> network.Rules:
        return self._change("Unban", {"range": text}, False)

    def quick(self, on: bool, *, confirm: bool = False) -> network.Rules:
        return self._change("SetQuick", {"on": on}, confirm)

    def port(self, service: str, on: bool, *, confirm: bool = False) -> network.Rules:
        return self._change("SetPort", {"service": service, "on": on}, confirm)

    def apply(self) -> network.Rules:
        return _rules.decode(self._conn.call(_IFACE + "Apply"))

    def preview(self) -> str:
        return _ruleset.decode(self._conn.call(_IFACE + "Preview")).nftables_json
