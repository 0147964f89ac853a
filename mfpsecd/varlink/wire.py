"""Varlink framing: NUL-terminated JSON objects on a stream socket.

Call   {"method": "iface.Method", "parameters": {...}, "more": true, "oneway": true}
Reply  {"parameters": {...}, "continues": true} or {"error": "iface.Error", "parameters": {...}}

Parameters of a call are kept raw (msgspec.Raw) so the server can check the caller's
privilege before it decodes anything the caller controls beyond the method name.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from mfpsecd.base.errors import ErrorCode, MfpsecError

NUL = b"\0"
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20

_EMPTY = msgspec.Raw(b"{}")
# What Call.parameters is (this very object) when a call carries no "parameters" key.
NO_PARAMETERS = _EMPTY


class Call(msgspec.Struct, frozen=True):
    # Unknown top-level keys are ignored, as the Varlink spec asks for forward compatibility.
    method: str
    parameters: msgspec.Raw = _EMPTY
    more: bool = False
    oneway: bool = False
    upgrade: bool = False


class Reply(msgspec.Struct, frozen=True, omit_defaults=True):
    parameters: msgspec.Raw = _EMPTY
    continues: bool = False
    error: str | None = None


_encoder = msgspec.json.Encoder()
_call_decoder = msgspec.json.Decoder(Call)
_reply_decoder = msgspec.json.Decoder(Reply)

# An interface name, a dot, then a method name starting with an upper-case letter.
_METHOD_RE = re.compile(
    r"[A-Za-z](?:-*[A-Za-z0-9])*(?:\.[A-Za-z0-9](?:-*[A-Za-z0-9])*)+\.[A-Z][A-Za-z0-9]*\Z"
)


def decode_call(
    data: bytes | bytearray | memoryview, known: frozenset[str] | dict[str, Any] = frozenset()
) -> Call:
    """Parse one call (without its NUL). Raises MfpsecError(PROTOCOL_ERROR) when it is not one.

    Method names in `known` are valid by construction; only others go through the grammar."""
    try:
        call = _call_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason=_short(exc)) from None
    except msgspec.DecodeError:
        raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason="message is not valid JSON") from None
    except RecursionError:
        raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason="nesting too deep") from None
    if call.method not in known and not _METHOD_RE.match(call.method):
        raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason="malformed method name")
    return call


def _short(exc: Exception) -> str:
    return str(exc)[:200]


_FIELD_RE = re.compile(r"`\$\.([A-Za-z0-9_.\[\]]+)`|field `([A-Za-z0-9_]+)`")


def decode_params(raw: msgspec.Raw, decoder: msgspec.json.Decoder[Any]) -> Any:
    """Decode call parameters with a method's typed decoder → InvalidParameter naming the field.

    The IDL shows an input with a default as optional (`?type`), which a Varlink client
    may send as null: null there means the default."""
    try:
        return decoder.decode(raw)
    except RecursionError:
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="parameters") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        failure: Exception = exc
    retried = _without_null_defaults(raw, decoder)
    if retried is not None:
        try:
            return decoder.decode(retried)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            failure = exc  # what is wrong once the nulls meant defaults
        finally:
            retried[:] = bytes(len(retried))  # it may hold a sensitive call's secrets
    m = _FIELD_RE.search(str(failure))
    name = (m.group(1) or m.group(2)) if m else "parameters"
    raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter=name) from None


_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _without_null_defaults(
    raw: msgspec.Raw, decoder: msgspec.json.Decoder[Any]
) -> bytearray | None:
    """The parameters without the nulls given for inputs that have a default, or None when
    there are none to drop."""
    struct = decoder.type
    if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
        return None
    defaulted = set(
        struct.__struct_fields__[len(struct.__struct_fields__) - len(struct.__struct_defaults__) :]
    )
    encoded = dict(zip(struct.__struct_fields__, struct.__struct_encode_fields__, strict=True))
    optional = {encoded[name] for name in defaulted}
    try:
        fields = _top_level.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    # (Only four-byte values are compared: no copy is made of a secret.)
    kept = {
        k: v
        for k, v in fields.items()
        if not (k in optional and len(v) == 4 and bytes(v) == b"null")
    }
    if len(kept) == len(fields):
        return None
    out = bytearray(b"{")
    for i, (key, value) in enumerate(kept.items()):
        out += (b"," if i else b"") + _encoder.encode(key) + b":"
        out += value
    out += b"}"
    return out


def encode_call(
    method: str, parameters: Any = None, *, more: bool = False, oneway: bool = False
) -> bytes:
    body: dict[str, Any] = {"method": method}
    if parameters is not None:
        body["parameters"] = parameters
    if more:
        body["more"] = True
    if oneway:
        body["oneway"] = True
    return _encoder.encode(body) + NUL


def encode_call_into(
    buffer: bytearray, method: str, parameters: Any, *, more: bool = False
) -> None:
    """encode_call into the caller's buffer, which they wipe once it is sent (the
    parameters of a sensitive call: no immutable copy of them is left behind)."""
    body: dict[str, Any] = {"method": method, "parameters": parameters}
    if more:
        body["more"] = True
    _encoder.encode_into(body, buffer)
    buffer += NUL


def encode_reply(result: Any, *, continues: bool = False) -> bytes:
    params = _encoder.encode(result)
    if continues:
        return b'{"parameters":' + params + b',"continues":true}\0'
    return b'{"parameters":' + params + b"}\0"


def encode_error(code: ErrorCode, params: dict[str, Any] | None = None) -> bytes:
    return _encoder.encode({"error": code.wire_name, "parameters": params or {}}) + NUL


def decode_reply(data: bytes | bytearray | memoryview) -> Reply:
    try:
        return _reply_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise MfpsecError(ErrorCode.PROTOCOL_ERROR, reason=f"bad reply: {_short(exc)}") from None


def error_from_reply(reply: Reply) -> MfpsecError:
    """Turn an error reply into the exception a client raises."""
    assert reply.error is not None
    code = ErrorCode.from_wire(reply.error)
    if code is None:
        return MfpsecError(ErrorCode.UNKNOWN_ERROR, f"daemon error {reply.error}", name=reply.error)
    try:
        raw = msgspec.json.decode(reply.parameters)
    except msgspec.DecodeError:
        raw = {}
    declared = {name for name, _ in code.params}
    params = {k: v for k, v in raw.items() if k in declared} if isinstance(raw, dict) else {}
    return MfpsecError(code, **params)
