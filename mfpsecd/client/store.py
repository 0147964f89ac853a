"""Typed calls of io.mfpsecd.Store."""

from __future__ import annotations

import msgspec

from mfpsecd.api import store
from mfpsecd.varlink.client import Connection

_status = msgspec.json.Decoder(store.StoreStatus)
_objects = msgspec.json.Decoder(store.StoredObjects)
_object = msgspec.json.Decoder(store.StoredObject)
_purge = msgspec.json.Decoder(store.PurgeResult)
_read = msgspec.json.Decoder(store.ReadResult)

_IFACE = "io.mfpsecd.Store."


class StoreClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def status(self) -> store.StoreStatus:
        return _status.decode(self._conn.call(_IFACE + "GetStoreStatus"))

    def put(
        self, fd: int, *, job: str, kind: str, name: str, owner: str = ""
    ) -> store.StoredObject:
        """Store everything readable from fd (a file or the read end of a pipe)."""
        params: dict[str, object] = {
            "descriptor": self._conn.pass_descriptor(fd),
            "job": job,
            "kind": kind,
            "name": name,
        }
        if owner:
            params["owner"] = owner
        return _object.decode(self._conn.call(_IFACE + "Put", params))

    def read(self, object_id: str, fd: int) -> int:
        """The object's plaintext written to fd; → its size."""
        token = self._conn.pass_descriptor(fd)
        return _read.decode(
            self._conn.call(_IFACE + "Read", {"object": object_id, "descriptor": token})
        ).size

    def objects(self) -> list[store.StoredObject]:
        return _objects.decode(self._conn.call(_IFACE + "ListObjects")).objects

    def printed(self, object_id: str) -> store.StoredObject:
        """A held secure-print job was printed: the daemon deletes it."""
        return _object.decode(self._conn.call(_IFACE + "MarkPrinted", {"object": object_id}))

    def delete(self, object_id: str) -> store.StoredObject:
        return _object.decode(self._conn.call(_IFACE + "DeleteObject", {"object": object_id}))

    def purge(self, password: bytearray | None) -> store.PurgeResult:
        """password: the logged-in caller's, again (zeroed once sent); None for root
        without a session."""
        if password is None:
            return _purge.decode(self._conn.call(_IFACE + "Purge", {}))
        return _purge.decode(
            self._conn.call_secret(_IFACE + "Purge", {"password": password}, password)
        )
