"""Replies from a newer daemon (the versioning policy: additive within a major version):
result fields this client does not know are dropped before the reply is typed, so a
client keeps working when the daemon grows. The strict decoder is tried first, so the
usual reply costs nothing more; only a reply with something new takes the slow path."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi


class ReplyDecoder:
    def __init__(self, result: type[Any]) -> None:
        self._type = result
        self._strict: msgspec.json.Decoder[Any] = msgspec.json.Decoder(result)
        self._info: mi.Type | None = None

    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        try:
            return self._strict.decode(raw)
        except msgspec.ValidationError:
            if self._info is None:
                self._info = mi.type_info(self._type)
            known = known_fields(msgspec.json.decode(raw), self._info)
            return msgspec.convert(known, self._type)  # anything else still wrong: raised


def known_fields(obj: Any, t: mi.Type) -> Any:
    """obj (decoded JSON) without the object members type t does not declare."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.StructType) and isinstance(obj, dict):
        fields = {f.encode_name: f.type for f in t.fields}
        return {k: known_fields(v, fields[k]) for k, v in obj.items() if k in fields}
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType) and (
        isinstance(obj, list)
    ):
        return [known_fields(v, t.item_type) for v in obj]
    if isinstance(t, mi.DictType) and isinstance(obj, dict):
        return {k: known_fields(v, t.value_type) for k, v in obj.items()}
    if isinstance(t, mi.UnionType) and obj is not None:
        for member in t.types:
            if _same_kind(obj, member):
                return known_fields(obj, member)
    return obj


def _same_kind(obj: Any, t: mi.Type) -> bool:
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(obj, dict):
        return isinstance(t, mi.StructType | mi.DictType)
    if isinstance(obj, list):
        return isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType)
    return False
