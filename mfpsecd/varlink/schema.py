"""Declaration types for Varlink interfaces: a method is declared once, with everything the
server, the client, the IDL generator and the contract tests need to know about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar, get_args, get_origin, get_type_hints

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode


class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Parameters of a method that takes none."""


# Marks a field that carries a secret as text (a session token): with every bytearray field
# (passwords, PINs, key material travel as bytearrays the daemon wipes), it makes a method
# that takes or returns it `sensitive` (a contract test holds the two together).
SECRET = msgspec.Meta(extra={"secret": True})

P = TypeVar("P", bound=msgspec.Struct)
R = TypeVar("R", bound=msgspec.Struct)


@dataclass(frozen=True)
class Method(Generic[P, R]):
    """One Varlink method: the client calls it with a P and gets an R back (a stream of R
    when it `streams`); the server routes it to the handler declared with @handles."""

    name: str
    doc: str
    params: type[P]
    result: type[R]
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
    # How a stream goes on over a new connection when the old one was lost: the new call's
    # parameters, from the first call's and the last reply received (None when none
    # was). A stream whose every reply is the whole current state (a status, a job's
    # progress) goes on with the same parameters (`restart`); one without `resume` cannot
    # go on (an export would start again from its beginning).
    resume: Callable[[P, R | None], P] | None = field(default=None, compare=False)
    # Set by the Interface that lists the method.
    interface: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.resume is not None and not self.streams:
            raise ValueError(f"{self.name} does not stream: it has nothing to resume")

    @property
    def qualified_name(self) -> str:
        """What a call names on the wire: io.mfpsecd.Wipe.Start."""
        if not self.interface:
            raise ValueError(f"{self.name} is listed by no Interface")
        return f"{self.interface}.{self.name}"


def restart(params: P, last: object) -> P:
    """`resume` for a stream whose every reply is the whole current state: ask again."""
    return params


@dataclass(frozen=True)
class Interface:
    name: str
    doc: str
    methods: tuple[Method[Any, Any], ...]
    # Named types beyond those reachable from method signatures (rarely needed).
    extra_types: tuple[type[msgspec.Struct], ...] = ()
    # The declaring module (__name__) when it lives in a capability's folder: its
    # <name>.varlink file is committed beside it.
    module: str = ""
    _by_name: dict[str, Method[Any, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {m.name: m for m in self.methods})
        if len(self._by_name) != len(self.methods):
            raise ValueError(f"duplicate method in {self.name}")
        for m in self.methods:
            if m.interface not in ("", self.name):
                raise ValueError(f"{m.name} is already listed by {m.interface}")
            object.__setattr__(m, "interface", self.name)

    def method(self, name: str) -> Method[Any, Any] | None:
        return self._by_name.get(name)

    @property
    def errors(self) -> tuple[ErrorCode, ...]:
        """Errors this interface declares: those whose wire name lives in it."""
        return tuple(code for code in ErrorCode if code.interface == self.name)


def carries_secret(t: Any, seen: frozenset[Any] = frozenset()) -> bool:
    """Whether values of type t can hold a secret: a bytearray, or a field marked SECRET."""
    if t is bytearray:
        return True
    origin = get_origin(t)
    if origin is Annotated:
        inner, *metas = get_args(t)
        return any(
            isinstance(m, msgspec.Meta) and (m.extra or {}).get("secret") for m in metas
        ) or carries_secret(inner, seen)
    if origin is not None:
        return any(carries_secret(a, seen) for a in get_args(t))
    if isinstance(t, type) and issubclass(t, msgspec.Struct) and t not in seen:
        hints = get_type_hints(t, include_extras=True)
        return any(carries_secret(h, seen | {t}) for h in hints.values())
    return False
