"""Clients of the daemon's Varlink API, shared by the panel, the CLI and the tests."""

from mfpsecd.client.system import AsyncSystemClient, SystemClient
from mfpsecd.varlink.client import DEFAULT_SOCKET, AsyncConnection, Connection

__all__ = [
    "DEFAULT_SOCKET",
    "AsyncConnection",
    "AsyncSystemClient",
    "Connection",
    "SystemClient",
]
