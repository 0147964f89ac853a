"""The key chain as the state database holds it: the TPM key rows (the wrapping key as
first created, its PCR bindings, the identity), the wrapped master key generations and
the chain's facts. Every function here runs inside one transaction the chain opens."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateConnection
from mfpsecd.keys.model import identity_history
from mfpsecd.keys.model.identity_history import SignedLink
from mfpsecd.keys.model.pcr_policy import PcrBinding
from mfpsecd.keys.ports import TpmKey


def fingerprint(spki_der: bytes) -> str:
    return hashlib.sha256(spki_der).hexdigest()


@dataclass(frozen=True)
class ChainRows:
    wrapping: TpmKey | None  # as first created; its blob is empty once bound
    identity: TpmKey | None
    masters: list[tuple[int, str, bytes]]
    bindings: list[TpmKey]


def binding_for(rows: ChainRows, measured: PcrBinding) -> TpmKey:
    """The wrapping key's binding that opens under the measured PCR values (a chain from
    before binding: its unbound key)."""
    assert rows.wrapping is not None
    if not rows.bindings:
        if not rows.wrapping.private:
            raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="wrapping key")
        return rows.wrapping
    for key in rows.bindings:
        if key.binding == measured:
            return key
    bound = "; ".join(k.binding.describe() for k in rows.bindings if k.binding is not None)
    raise MfpsecError(
        ErrorCode.KEYS_UNAVAILABLE,
        reason=f"this boot measured {measured.describe()}, the keys are bound to {bound}: "
        f"boot the verified firmware they are bound to, or restore the key backup",
    )


def binding_key(binding: PcrBinding) -> tuple[str, bytes]:
    return ",".join(map(str, binding.pcrs)), b"".join(binding.values)


def insert_binding(conn: StateConnection, key: TpmKey, purpose: str, now: str) -> None:
    assert key.binding is not None
    conn.execute(
        "INSERT OR REPLACE INTO key_bindings (pcrs, pcr_values, public, private, "
        "purpose, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (*binding_key(key.binding), key.public, key.private, purpose, now),
    )


def read_binding(pcrs: object, values: object) -> PcrBinding:
    indices = tuple(int(p) for p in str(pcrs).split(",") if p)
    if not isinstance(values, bytes) or len(values) != 32 * len(indices):
        raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="wrapping key binding")
    try:
        return PcrBinding(
            indices, tuple(values[i * 32 : (i + 1) * 32] for i in range(len(indices)))
        )
    except ValueError:
        raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="wrapping key binding") from None


def load_chain(conn: StateConnection) -> ChainRows:
    keys: dict[str, TpmKey] = {}
    for role, public, private in conn.execute(
        "SELECT role, public, private FROM tpm_keys"
    ).fetchall():
        assert isinstance(public, bytes) and isinstance(private, bytes)
        keys[str(role)] = TpmKey(public=public, private=private)
    masters = []
    for g, s, w in conn.execute(
        "SELECT generation, status, wrapped FROM master_keys ORDER BY generation"
    ).fetchall():
        assert isinstance(w, bytes)
        masters.append((int(str(g)), str(s), w))
    bindings = []
    for pcrs, values, public, private in conn.execute(
        "SELECT pcrs, pcr_values, public, private FROM key_bindings"
    ).fetchall():
        assert isinstance(public, bytes) and isinstance(private, bytes)
        bindings.append(TpmKey(public, private, read_binding(pcrs, values)))
    return ChainRows(keys.get("wrapping"), keys.get("identity"), masters, bindings)


def set_fact(conn: StateConnection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO key_facts (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def read_facts(conn: StateConnection) -> dict[str, str]:
    return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM key_facts").fetchall()}


def store_restored(
    conn: StateConnection,
    link: SignedLink | None,
    *,
    key: TpmKey,
    identity: TpmKey,
    identity_spki: bytes,
    backend: str,
    now: str,
) -> None:
    """One transaction: the identity link, the restored key's binding, the new identity."""
    if link is not None:
        conn.execute(
            "INSERT INTO identity_links (seq, document) VALUES (?, ?)",
            (link.link.seq, identity_history.encode(link).decode()),
        )
    # Bindings made on the replaced TPM cannot load here.
    conn.execute("DELETE FROM key_bindings")
    insert_binding(conn, key, "restored from backup", now)
    conn.execute("UPDATE tpm_keys SET private = X'' WHERE role = 'wrapping'")
    conn.execute("DELETE FROM tpm_keys WHERE role = 'identity'")
    conn.execute(
        "INSERT INTO tpm_keys (role, backend, public, private, fingerprint, "
        "created_at) VALUES ('identity', ?, ?, ?, ?, ?)",
        (backend, identity.public, identity.private, fingerprint(identity_spki), now),
    )
    set_fact(conn, "restored_at", now)
