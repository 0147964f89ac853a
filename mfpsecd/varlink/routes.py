"""Handlers bound to the declaration they serve.

A capability groups its interface's handlers in one class, each method marked with the
Method it answers: `@handles(api.START)`. mypy checks the method against the declaration
(its parameters take the declared params type, it returns the declared result, a
coroutine of it, or an async iterator of it for a streaming method), and `routes(obj)`
gives the server its table. Stack traces and grep name the handler: WipeHandlers.start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Generic, TypeVar, overload

import msgspec

from mfpsecd.varlink.calls import CallContext, Handler, Last
from mfpsecd.varlink.schema import Method, P, R

S = TypeVar("S")
_MARK = "__varlink_method__"


class handles(Generic[P, R]):
    def __init__(self, method: Method[P, R]) -> None:
        self.method = method

    @overload
    def __call__(
        self, fn: Callable[[S, CallContext, P], Coroutine[Any, Any, R]]
    ) -> Callable[[S, CallContext, P], Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(
        self, fn: Callable[[S, CallContext, P], AsyncIterator[R | Last[R]]]
    ) -> Callable[[S, CallContext, P], AsyncIterator[R | Last[R]]]: ...
    @overload
    def __call__(
        self, fn: Callable[[S, CallContext, P], R | msgspec.Raw]
    ) -> Callable[[S, CallContext, P], R | msgspec.Raw]: ...

    def __call__(self, fn: Any) -> Any:
        setattr(fn, _MARK, self.method)
        return fn


def routes(*handlers: object) -> dict[str, Handler]:
    """{qualified method name: bound handler} of every @handles method of the objects."""
    table: dict[str, Handler] = {}
    for obj in handlers:
        for attr in dir(type(obj)):
            method = getattr(getattr(type(obj), attr, None), _MARK, None)
            if not isinstance(method, Method):
                continue
            if method.qualified_name in table:
                raise TypeError(f"two handlers for {method.qualified_name}")
            table[method.qualified_name] = getattr(obj, attr)
    return table
