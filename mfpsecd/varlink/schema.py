"""Declaration types for Varlink interfaces: a method is declared once, with everything the
server, the client, the IDL generator and the contract tests need to know about it."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode


class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Parameters of a method that takes none."""


@dataclass(frozen=True)
class Method:
    name: str
    doc: str
    params: type[msgspec.Struct]
    result: type[msgspec.Struct]
    requires: Privilege
    errors: tuple[ErrorCode, ...] = ()
    # The call or its reply carries secrets: the wire layer never logs its parameters and
    # wipes the raw message buffer after handling.
    sensitive: bool = False
    # Replies stream (Varlink more/continues); the method must be called with more=true.
    streams: bool = False
    # The parameters' `descriptor` names a descriptor passed on the side channel. Whatever
    # the call's outcome (refused before its handler, failed, done), the server releases
    # it when the call ends: a refused call holds nothing.
    passes_descriptor: bool = False


@dataclass(frozen=True)
class Interface:
    name: str
    doc: str
    methods: tuple[Method, ...]
    # Named types beyond those reachable from method signatures (rarely needed).
    extra_types: tuple[type[msgspec.Struct], ...] = ()
    # The declaring module (__name__) when it lives in a capability's folder: its
    # <name>.varlink file is committed beside it.
    module: str = ""
    _by_name: dict[str, Method] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {m.name: m for m in self.methods})
        if len(self._by_name) != len(self.methods):
            raise ValueError(f"duplicate method in {self.name}")

    def method(self, name: str) -> Method | None:
        return self._by_name.get(name)

    @property
    def errors(self) -> tuple[ErrorCode, ...]:
        """Errors this interface declares: those whose wire name lives in it."""
        return tuple(code for code in ErrorCode if code.interface == self.name)
