"""Typed calls of io.mfpsecd.Keys. Secrets and passphrases are passed as bytearrays and
zeroed here once sent (the daemon never sends any back)."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from mfpsecd.api import keys
from mfpsecd.varlink.client import Connection

_status = msgspec.json.Decoder(keys.KeyStatus)
_secret = msgspec.json.Decoder(keys.SecretInfo)
_secrets = msgspec.json.Decoder(keys.SecretList)
_backup = msgspec.json.Decoder(keys.BackupResult)
_restore = msgspec.json.Decoder(keys.RestoreResult)
_rotate = msgspec.json.Decoder(keys.RotateResult)
_identity = msgspec.json.Decoder(keys.DeviceIdentity)
_history = msgspec.json.Decoder(keys.IdentityHistory)
_targets = msgspec.json.Decoder(keys.BackupTargets)

_IFACE = "io.mfpsecd.Keys."


class KeysClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def status(self) -> keys.KeyStatus:
        return _status.decode(self._conn.call(_IFACE + "GetKeyStatus"))

    def list_secrets(self) -> list[keys.SecretInfo]:
        return _secrets.decode(self._conn.call(_IFACE + "ListSecrets")).secrets

    def _call_with_secret(
        self, method: str, params: dict[str, object], secret: bytearray
    ) -> msgspec.Raw:
        return self._conn.call_secret(_IFACE + method, params, secret)

    def set_secret(self, name: str, kind: str, value: bytearray) -> keys.SecretInfo:
        return _secret.decode(
            self._call_with_secret("SetSecret", {"name": name, "kind": kind, "value": value}, value)
        )

    def delete_secret(self, name: str) -> None:
        self._conn.call(_IFACE + "DeleteSecret", {"name": name})

    def backup(self, target: str, passphrase: bytearray) -> keys.BackupResult:
        return _backup.decode(
            self._call_with_secret(
                "BackupKeys", {"target": target, "passphrase": passphrase}, passphrase
            )
        )

    def restore(self, source: str, passphrase: bytearray) -> keys.RestoreResult:
        return _restore.decode(
            self._call_with_secret(
                "RestoreKeys", {"source": source, "passphrase": passphrase}, passphrase
            )
        )

    def rotate(self) -> keys.RotateResult:
        return _rotate.decode(self._conn.call(_IFACE + "RotateMasterKey"))

    def destroy(self, confirm_fingerprint: str) -> None:
        self._conn.call(_IFACE + "DestroyKeys", {"confirm_fingerprint": confirm_fingerprint})

    def identity(self) -> keys.DeviceIdentity:
        return _identity.decode(self._conn.call(_IFACE + "GetDeviceIdentity"))

    def identity_history(self) -> keys.IdentityHistory:
        return _history.decode(self._conn.call(_IFACE + "GetIdentityHistory"))

    def backup_targets(self) -> list[keys.BackupTarget]:
        return _targets.decode(self._conn.call(_IFACE + "ListBackupTargets")).targets

    def watch_backup_targets(self) -> Iterator[list[keys.BackupTarget]]:
        for raw in self._conn.call_more(_IFACE + "WatchBackupTargets"):
            yield _targets.decode(raw).targets
