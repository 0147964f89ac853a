"""Connections to the daemon's Varlink API, shared by the panel, the CLI and the tests.
Calls are made by declaration: `conn.call(api.METHOD, api.Params(...))` with the
constants of each capability's api.py; `follow` and `follow_async` watch a stream across
lost connections (a daemon restart), resuming it the way its declaration says."""

from mfpsecd.varlink.client import DEFAULT_SOCKET, AsyncConnection, Connection
from mfpsecd.varlink.follow import follow, follow_async
from mfpsecd.varlink.schema import NoParams

__all__ = [
    "DEFAULT_SOCKET",
    "AsyncConnection",
    "Connection",
    "NoParams",
    "follow",
    "follow_async",
]
