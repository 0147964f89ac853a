"""FPT_SKP_EXT.1 (K-4), the assurance activity on the interface: no method's reply can
carry a key or a secret's value. Every field of every reply type, at any depth, whose
name speaks of a key, secret, password, token or seed is listed here with why it is
not key material; a new one fails this test until someone says why."""

from __future__ import annotations

import re
from typing import Any

import msgspec.inspect as mi
import pytest

from mfpsecd.daemon import interfaces

SENSITIVE_NAME = re.compile(r"(secret|password|passphrase|private|master|key|token|seed|pin)", re.I)

# leaf field name → why it carries no key material
ALLOWED = {
    "password_set_at": "a time stamp",
    "password": "the password rules of the policy (lengths, classes), not a password",
    "token": "the caller's own session token: it names the session, opens nothing else",
    "secret": "EnrollTotp: the user's own TOTP seed, shown once for their authenticator "
    "(RFC 6238 needs it there), never a key of the device",
    "public_key_pem": "the identity key's public half",
    "public_key": "an earlier identity key's public half",
    "master_key_generation": "a counter",
    "secrets": "a count, or the names of the stored secrets (never their values)",
    "software_keys": "whether the board has no TPM",
    "wrapping_key_fingerprint": "a SHA-256 fingerprint of the public half",
    "client_key_file": "the path of the SIEM client key file the administrator configured",
    "password_secret": "the name of a stored secret, not its value",
    "auth_secret": "the name of a stored secret, not its value",
    "priv_secret": "the name of a stored secret, not its value",
    "community_secret": "the name of a stored secret, not its value",
    "key_chain": "the key chain's state (ready, locked, ...)",
}


def _fields(t: Any, path: str, seen: set[type], out: list[tuple[str, str]]) -> None:
    if isinstance(t, mi.StructType):
        if t.cls in seen:
            return
        seen.add(t.cls)
        for f in t.fields:
            out.append((f"{path}.{f.name}", f.name))
            _fields(f.type, f"{path}.{f.name}", seen, out)
    elif isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        _fields(t.item_type, path, seen, out)
    elif isinstance(t, mi.DictType):
        _fields(t.value_type, path, seen, out)
    elif isinstance(t, mi.UnionType):
        for member in t.types:
            _fields(member, path, seen, out)
    elif isinstance(t, mi.Metadata):
        _fields(t.type, path, seen, out)


def _reply_fields() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for interface in interfaces.INTERFACES:
        for method in interface.methods:
            if method.result is not None:
                _fields(mi.type_info(method.result), f"{interface.name}.{method.name}", set(), out)
    return out


@pytest.mark.sfr("FPT_SKP_EXT.1")
@pytest.mark.spec("K-4")
def test_no_reply_field_can_carry_key_material() -> None:
    fields = _reply_fields()
    assert len(fields) > 300  # every interface's replies were walked
    unexplained = sorted(
        {path for path, leaf in fields if SENSITIVE_NAME.search(leaf) and leaf not in ALLOWED}
    )
    assert unexplained == [], "reply fields that may carry key material: " + ", ".join(unexplained)
    # The allow-list holds nothing that no longer exists.
    assert {leaf for _, leaf in fields if SENSITIVE_NAME.search(leaf)} == ALLOWED.keys()
