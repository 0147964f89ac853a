"""Typed calls of io.mfpsecd.Firmware."""

from __future__ import annotations

import msgspec

from mfpsecd.api import firmware
from mfpsecd.varlink.client import Connection

_status = msgspec.json.Decoder(firmware.FirmwareStatus)
_verification = msgspec.json.Decoder(firmware.Verification)
_staged = msgspec.json.Decoder(firmware.Staged)
_lock = msgspec.json.Decoder(firmware.LockState)

_IFACE = "io.mfpsecd.Firmware."


class FirmwareClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def status(self) -> firmware.FirmwareStatus:
        return _status.decode(self._conn.call(_IFACE + "GetStatus"))

    def verify_slot(self, slot: str = "") -> firmware.Verification:
        """An installed slot ("": the running one) checked against its signed manifest."""
        return _verification.decode(self._conn.call(_IFACE + "Verify", {"slot": slot}))

    def verify_archive(self, fd: int) -> firmware.Verification:
        """A bundle archive read from fd, checked as an update would check it."""
        return _verification.decode(
            self._conn.call(_IFACE + "Verify", {"descriptor": self._conn.pass_descriptor(fd)})
        )

    def _secret_call(
        self, method: str, params: dict[str, object], password: bytearray | None
    ) -> msgspec.Raw:
        """password: the logged-in caller's, again (zeroed once sent); None for root
        without a session."""
        if password is None:
            return self._conn.call(_IFACE + method, params)
        params["password"] = password
        return self._conn.call_secret(_IFACE + method, params, password)

    def update(self, fd: int, password: bytearray | None) -> firmware.Staged:
        token = self._conn.pass_descriptor(fd)
        return _staged.decode(self._secret_call("Update", {"descriptor": token}, password))

    def lock(self, password: bytearray | None) -> firmware.LockState:
        return _lock.decode(self._secret_call("Lock", {}, password))

    def unlock(self, password: bytearray | None) -> firmware.LockState:
        return _lock.decode(self._secret_call("Unlock", {}, password))
