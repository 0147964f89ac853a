"""Connections to the daemon's Varlink API, shared by the panel, the CLI and the tests.
Calls are made by declaration: `conn.call(api.METHOD, api.Params(...))` with the
constants of each capability's api.py."""

from mfpsecd.varlink.client import DEFAULT_SOCKET, AsyncConnection, Connection

__all__ = [
    "DEFAULT_SOCKET",
    "AsyncConnection",
    "Connection",
]
