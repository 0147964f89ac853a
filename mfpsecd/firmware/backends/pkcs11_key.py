"""The vendor's firmware signing key in a PKCS#11 token (an HSM; SoftHSM2 in the tests),
named by an RFC 7512 `pkcs11:` URI: the private key never leaves the token. The signing
tool hashes the manifest (SHA-384) and the token signs the digest (CKM_ECDSA); the raw
r||s it returns is encoded as the DER the verifier reads. Only ECDSA P-384 keys: the
classical half of the signature. (No PKCS#11 token here holds ML-DSA-87 keys yet:
firmware/README.md says where that key lives.)

    pkcs11:token=fw-hsm;object=fw-signer?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin

The PIN comes from a file (pin-source=file:...), never from the command line, where
other users could read it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import click
import pkcs11
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import exceptions as p11

P384_BYTES = 48


@dataclass(frozen=True)
class TokenKey:
    module: str
    token: str
    label: str
    key_id: bytes
    pin_file: Path


def parse_uri(uri: str) -> TokenKey:
    """The parts of a pkcs11: URI this tool takes; click.UsageError for anything else."""
    if not uri.startswith("pkcs11:"):
        raise click.UsageError("--key: a PEM file or a pkcs11: URI")
    path, _, query = uri[len("pkcs11:") :].partition("?")
    attrs = dict(_pairs(path, ";"))
    params = dict(_pairs(query, "&"))
    if "pin-value" in params:
        raise click.UsageError("--key: give the PIN as pin-source=file:..., not pin-value")
    source = params.get("pin-source", "")
    if not source.startswith("file:"):
        raise click.UsageError("--key: the URI needs pin-source=file:PATH (the token's PIN)")
    module = params.get("module-path", "")
    if not module:
        raise click.UsageError("--key: the URI needs module-path=PATH (the PKCS#11 module)")
    if "token" not in attrs or not ({"object", "id"} & attrs.keys()):
        raise click.UsageError("--key: the URI names the token and the key (object or id)")
    return TokenKey(
        module,
        attrs["token"],
        attrs.get("object", ""),
        attrs.get("id", "").encode("latin-1"),
        Path(source[len("file:") :]),
    )


def _pairs(text: str, sep: str) -> list[tuple[str, str]]:
    out = []
    for item in filter(None, text.split(sep)):
        name, eq, value = item.partition("=")
        if not eq:
            raise click.UsageError(f"--key: {item!r} is not NAME=VALUE")
        out.append((name, unquote(value, encoding="latin-1")))
    return out


class Pkcs11SigningKey:
    """sign(data) → a DER ECDSA-SHA384 signature made inside the token."""

    def __init__(self, uri: str) -> None:
        self.key = parse_uri(uri)

    def check(self) -> None:
        """The token takes the PIN and holds the key: before anything is written."""
        self._with_key(lambda key: None)

    def sign(self, data: bytes) -> bytes:
        digest = hashlib.sha384(data).digest()
        raw = self._with_key(lambda key: bytes(key.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)))
        assert raw is not None
        if len(raw) != 2 * P384_BYTES:
            raise click.UsageError("--key: the token's key is not ECDSA P-384")
        return encode_dss_signature(
            int.from_bytes(raw[:P384_BYTES], "big"), int.from_bytes(raw[P384_BYTES:], "big")
        )

    def _with_key(self, use: Callable[[Any], bytes | None]) -> bytes | None:
        k = self.key
        try:
            pin = k.pin_file.read_text().strip()
        except OSError as exc:
            raise click.UsageError(f"--key: the PIN file: {exc}") from None
        try:
            token = pkcs11.lib(k.module).get_token(token_label=k.token)
            with token.open(user_pin=pin) as session:
                key: Any = session.get_key(
                    object_class=pkcs11.ObjectClass.PRIVATE_KEY,
                    key_type=pkcs11.KeyType.EC,
                    label=k.label or None,
                    id=k.key_id or None,
                )
                return use(key)
        except (p11.NoSuchToken, p11.NoSuchKey, p11.MultipleObjectsReturned) as exc:
            raise click.UsageError(
                f"--key: no single such key in the token ({type(exc).__name__})"
            ) from None
        except p11.PinIncorrect:
            raise click.UsageError("--key: the token refused the PIN") from None
        except (p11.PKCS11Error, RuntimeError, OSError) as exc:
            raise click.UsageError(f"--key: the token: {type(exc).__name__} {exc}") from None
