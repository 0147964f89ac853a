"""The Netfilter port on libnftables' JSON API (Debian's python3-nftables), in the board's
network namespace.

A ruleset is applied as one JSON batch, which the kernel commits as one transaction: a
batch that fails leaves the previous table untouched. Where the Python binding is absent
the same JSON goes to `nft -j -f -` (one process per apply, about 50 times slower).
Every call runs on the namespace's worker thread; libnftables' context is created there.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import msgspec

from mfpsecd.base.addresses import Range
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.ipfilter.backends.netns import NetnsWorker, bursts
from mfpsecd.ipfilter.backends.nft_elements import (
    ElementSocket,
    NotEncodable,
    subscribe_changes,
    touches_table,
)
from mfpsecd.ipfilter.model.ruleset import TABLE

_ENCODE = msgspec.json.Encoder().encode


class _Nft(Protocol):
    def json_cmd(self, doc: dict[str, Any]) -> tuple[int, Any, str]: ...

    def cmd(self, text: str) -> tuple[int, str, str]: ...

    def terse(self, on: bool) -> None: ...


class _NftProcess:
    """The fallback: the nft command line, JSON in and out."""

    def __init__(self) -> None:
        nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
        if nft is None:
            raise MfpsecError(
                ErrorCode.NETWORK_UNAVAILABLE,
                reason="neither libnftables' Python binding nor nft is installed",
            )
        self._nft = nft
        self._terse = False

    def terse(self, on: bool) -> None:
        self._terse = on

    def json_cmd(self, doc: dict[str, Any]) -> tuple[int, Any, str]:
        rc, out, err = self.cmd(json.dumps(doc))
        return rc, json.loads(out) if out.strip() else "", err

    def cmd(self, text: str) -> tuple[int, str, str]:
        r = subprocess.run(
            [self._nft, "-j", *(["-t"] if self._terse else []), "-f", "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return r.returncode, r.stdout, r.stderr


def _library() -> _Nft | None:
    try:
        import nftables  # noqa: PLC0415 (optional: Debian's package, not on PyPI)
    except ImportError:
        return None
    ctx = nftables.Nftables()
    ctx.set_json_output(True)
    ctx.set_handle_output(False)
    return _Library(ctx)


class _Library:
    """libnftables' context, through the binding."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def json_cmd(self, doc: dict[str, Any]) -> tuple[int, Any, str]:
        return self._ctx.json_cmd(doc)  # type: ignore[no-any-return]

    def cmd(self, text: str) -> tuple[int, str, str]:
        return self._ctx.cmd(text)  # type: ignore[no-any-return]

    def terse(self, on: bool) -> None:
        self._ctx.set_terse_output(on)


class NftablesFilter:
    def __init__(self, netns: str | None) -> None:
        self._worker = NetnsWorker(netns, "nftables")
        self._nft: _Nft | None = None
        self._elements: ElementSocket | None = None
        self.via = ""

    def _ctx(self) -> _Nft:
        if self._nft is None:
            lib = _library()
            self._nft, self.via = (
                (lib, "libnftables") if lib is not None else (_NftProcess(), "nft -j -f -")
            )
        return self._nft

    def _cmd(self, commands: list[dict[str, Any]]) -> tuple[int, Any, str]:
        try:
            return self._ctx().json_cmd({"nftables": commands})
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise MfpsecError(ErrorCode.NETWORK_UNAVAILABLE, reason=str(exc)) from None

    async def apply(self, commands: list[dict[str, Any]]) -> None:
        """One transaction; NETWORK_APPLY_FAILED (and nothing changed) if refused. The
        JSON goes to libnftables as text encoded by msgspec (the binding's json.dumps
        costs a fifth of a 10,000-range apply); with JSON output on, it parses JSON."""

        def run() -> None:
            try:
                rc, _out, err = self._ctx().cmd(_ENCODE({"nftables": commands}).decode())
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                raise MfpsecError(ErrorCode.NETWORK_UNAVAILABLE, reason=str(exc)) from None
            if rc != 0:
                raise MfpsecError(
                    ErrorCode.NETWORK_APPLY_FAILED,
                    reason=" ".join(err.split())[:500] or f"nft status {rc}",
                )

        await self._worker.call(run)

    def _list(self, what: dict[str, Any]) -> list[dict[str, Any]] | None:
        rc, out, _err = self._cmd([{"list": what}])
        if rc != 0 or not isinstance(out, dict):
            return None
        items: list[dict[str, Any]] = out.get("nftables", [])
        return items

    async def present(self) -> bool:
        """Our table is in the kernel (the list of tables: not their contents)."""

        def run() -> bool:
            items = self._list({"tables": {"family": "inet"}}) or []
            return any(i.get("table", {}).get("name") == TABLE for i in items)

        return await self._worker.call(run)

    async def refused(self) -> dict[str, int]:
        """Refused packets per source address since each was first seen (the dynamic
        sets' counters)."""

        def run() -> dict[str, int]:
            out: dict[str, int] = {}
            for family in (4, 6):
                items = (
                    self._list(
                        {"set": {"family": "inet", "table": TABLE, "name": f"refused{family}"}}
                    )
                    or []
                )
                for item in items:
                    for e in item.get("set", {}).get("elem", []):
                        elem = e.get("elem", e) if isinstance(e, dict) else {"val": e}
                        packets = elem.get("counter", {}).get("packets", 0)
                        out[str(elem.get("val"))] = int(packets)
            return out

        return await self._worker.call(run)

    async def ruleset(self, *, terse: bool = False) -> list[dict[str, Any]]:
        """Our table as the kernel has it (JSON); terse: without set elements (nothing of
        a set's size is read)."""

        def run() -> list[dict[str, Any]]:
            ctx = self._ctx()
            ctx.terse(terse)
            try:
                return self._list({"table": {"family": "inet", "name": TABLE}}) or []
            finally:
                ctx.terse(False)

        return await self._worker.call(run)

    async def ban(self, set_name: str, element: Any, seconds: int) -> None:
        """element into the ban set for `seconds` (again, if there: its time restarts)."""
        target = {"family": "inet", "table": TABLE, "name": set_name}
        add = {
            "add": {"element": {**target, "elem": [{"elem": {"val": element, "timeout": seconds}}]}}
        }
        drop = {"delete": {"element": {**target, "elem": [element]}}}

        def run() -> None:
            rc, _out, _err = self._ctx().cmd(_ENCODE({"nftables": [drop, add]}).decode())
            if rc == 0:
                return
            rc, _out, err = self._ctx().cmd(_ENCODE({"nftables": [add]}).decode())
            if rc != 0:
                raise MfpsecError(
                    ErrorCode.NETWORK_APPLY_FAILED,
                    reason=" ".join(err.split())[:500] or f"nft status {rc}",
                )

        await self._worker.call(run)

    async def unban(self, set_name: str, element: Any) -> bool:
        """element out of the ban set; False if it was not there."""
        target = {"family": "inet", "table": TABLE, "name": set_name}
        return await self._worker.call(
            lambda: (
                self._ctx().cmd(
                    _ENCODE(
                        {"nftables": [{"delete": {"element": {**target, "elem": [element]}}}]}
                    ).decode()
                )[0]
                == 0
            )
        )

    async def banned(self, set_name: str) -> list[tuple[Any, int]]:
        """The ban set's elements and the seconds each has left."""

        def run() -> list[tuple[Any, int]]:
            items = self._list({"set": {"family": "inet", "table": TABLE, "name": set_name}}) or []
            out = []
            for item in items:
                for e in item.get("set", {}).get("elem", []):
                    elem = e.get("elem", {}) if isinstance(e, dict) and "elem" in e else {}
                    out.append((elem.get("val", e), int(elem.get("expires", 0))))
            return out

        return await self._worker.call(run)

    async def swap_intervals(
        self, swaps: Sequence[tuple[str, Sequence[Range], Sequence[Range]]]
    ) -> bool:
        """Interval-set elements out and in, one transaction, without reading the sets
        (backends.nft_elements). False when a set was not as expected (an element to take
        out missing, one to put in there already); NETWORK_APPLY_FAILED if refused for
        another reason. Either way nothing changed."""

        def run() -> bool:
            if self._elements is None:
                self._elements = ElementSocket()  # in the worker: in the namespace
            try:
                self._elements.swap(swaps)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EEXIST):
                    return False
                raise MfpsecError(
                    ErrorCode.NETWORK_APPLY_FAILED, reason=f"set elements: {exc}"
                ) from None
            except (NotEncodable, struct.error) as exc:
                raise MfpsecError(
                    ErrorCode.NETWORK_APPLY_FAILED, reason=f"set elements: {exc}"
                ) from None
            return True

        return await self._worker.call(run)

    async def changes(self) -> AsyncIterator[None]:
        """Yields after each burst of nftables notifications that touch our table (ours
        as well as anyone else's: the caller tells them apart)."""
        sock = await self._worker.call(subscribe_changes)
        async with contextlib.aclosing(bursts(sock, touches_table)) as events:
            async for _ in events:
                yield None

    def close(self) -> None:
        if self._elements is not None:
            with contextlib.suppress(Exception):
                self._worker.call_sync(self._elements.close)
        self._worker.close()
