"""Typed calls of io.mfpsecd.Store."""

from __future__ import annotations

import msgspec

from mfpsecd.api import store
from mfpsecd.client.connection import Connection, zero

_status = msgspec.json.Decoder(store.StoreStatus)
_objects = msgspec.json.Decoder(store.StoredObjects)
_object = msgspec.json.Decoder(store.StoredObject)
_purge = msgspec.json.Decoder(store.PurgeResult)

_IFACE = "io.mfpsecd.Store."


class StoreClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def status(self) -> store.StoreStatus:
        return _status.decode(self._conn.call(_IFACE + "GetStoreStatus"))

    def objects(self) -> list[store.StoredObject]:
        return _objects.decode(self._conn.call(_IFACE + "ListObjects")).objects

    def delete(self, object_id: str) -> store.StoredObject:
        return _object.decode(self._conn.call(_IFACE + "DeleteObject", {"object": object_id}))

    def purge(self, password: bytearray | None) -> store.PurgeResult:
        """password: the logged-in caller's, again (zeroed once sent); None for root
        without a session."""
        params: dict[str, object] = {}
        if password is not None:
            params["password"] = password
        try:
            return _purge.decode(self._conn.call(_IFACE + "Purge", params))
        finally:
            if password is not None:
                zero(password)
