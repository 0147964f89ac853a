"""What a handler is given and gives back, and who may call: the call context, the
handler kinds, the streaming end marker, the access policy the server is given, and a
call that passed every check (what the connection hands to dispatch)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.admission import PeerClass, PeerCredentials, privileges
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink.schema import Method

T = TypeVar("T")


class Last(Generic[T]):
    """Yielded by a streaming handler for its final reply (sent without continues)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class Seat(Protocol):
    """A connection's standing: what its peer class grants without more ado, and whatever
    the access policy attaches to it (the auth capability's login session)."""

    @property
    def base(self) -> frozenset[Privilege]: ...


class Access(Protocol):
    """The access policy beyond peer classes, injected: the server knows no sessions."""

    def seat(self, peer: PeerCredentials, peer_class: PeerClass) -> Seat:
        """The standing of a newly connected peer."""
        ...

    def authorize(self, seat: Seat, needed: Privilege) -> None:
        """For a privilege the peer class does not grant: raise MfpsecError unless the
        seat may have it now."""
        ...


@dataclass(frozen=True, slots=True)
class _ClassSeat:
    base: frozenset[Privilege]


class PeerClassAccess:
    """No sessions: a connection may do what its peer class grants, and nothing more."""

    def seat(self, peer: PeerCredentials, peer_class: PeerClass) -> Seat:
        return _ClassSeat(privileges(peer_class))

    def authorize(self, seat: Seat, needed: Privilege) -> None:
        raise MfpsecError(ErrorCode.PERMISSION_DENIED)


@dataclass(frozen=True, slots=True)
class CallContext:
    peer: PeerCredentials
    peer_class: PeerClass
    method: Method[Any, Any]
    qualified_name: str
    seat: Seat  # the connection's (the auth capability's: see sessions.seat_of)


# Answers at once, without I/O or waiting: called from the read callback. It may return
# the result already encoded (msgspec.Raw) when it caches it.
SyncHandler = Callable[[CallContext, Any], msgspec.Struct | msgspec.Raw]
UnaryHandler = Callable[[CallContext, Any], Awaitable[msgspec.Struct]]
# Yields Structs (continues=true) and ends with Last(struct).
StreamHandler = Callable[[CallContext, Any], AsyncIterator[Any]]
Handler = SyncHandler | UnaryHandler | StreamHandler


def is_sync_handler(handler: Handler) -> bool:
    return not (inspect.iscoroutinefunction(handler) or inspect.isasyncgenfunction(handler))


@dataclass(slots=True)
class PreparedCall:
    """A call that passed every check up to its handler, parameters decoded."""

    msg: bytearray | memoryview  # wiped after handling (the caller wipes in-place ones)
    method: Method[Any, Any]
    ctx: CallContext
    handler: Handler
    params: Any
    reply: bool
    sync: bool


# What prepare() makes of a message: a call to run, or already answered (True: keep the
# connection, False: close it after pending replies).
Outcome = PreparedCall | bool
