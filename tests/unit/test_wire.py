from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.varlink import wire
from mfpsecd.varlink.service import GetInterfaceDescriptionParams


def test_call_round_trip() -> None:
    data = wire.encode_call("io.mfpsecd.System.GetStatus", {"a": 1}, more=True)
    assert data.endswith(b"\0")
    call = wire.decode_call(data[:-1])
    assert (call.method, call.more, call.oneway) == ("io.mfpsecd.System.GetStatus", True, False)
    assert msgspec.json.decode(call.parameters) == {"a": 1}


def test_unknown_top_level_keys_are_ignored() -> None:
    call = wire.decode_call(b'{"method":"a.b.C","future":1}')
    assert call.method == "a.b.C"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"method":1}',
        b'{"x":1}',
        b'{"method":"nodots"}',
        b'{"method":"a.b.lower"}',
        b'{"method":"a.b.C","more":"yes"}',
    ],
)
def test_not_a_call(data: bytes) -> None:
    with pytest.raises(MfpsecError) as info:
        wire.decode_call(data)
    assert info.value.code is ErrorCode.PROTOCOL_ERROR


def test_params_errors_name_the_parameter() -> None:
    dec = msgspec.json.Decoder(GetInterfaceDescriptionParams)
    for raw, name in [
        (b'{"interface":1}', "interface"),
        (b"{}", "interface"),
        (b'{"interface":"x","y":2}', "y"),
        (b"[]", "parameters"),
    ]:
        with pytest.raises(MfpsecError) as info:
            wire.decode_params(msgspec.Raw(raw), dec)
        assert info.value.params == {"parameter": name}


def test_reply_encoding_and_errors() -> None:
    r = wire.decode_reply(wire.encode_reply({"x": 1}, continues=True)[:-1])
    assert r.continues and msgspec.json.decode(r.parameters) == {"x": 1}
    e = wire.decode_reply(wire.encode_error(ErrorCode.INVALID_PARAMETER, {"parameter": "p"})[:-1])
    exc = wire.error_from_reply(e)
    assert exc.code is ErrorCode.INVALID_PARAMETER and exc.params == {"parameter": "p"}
    unknown = wire.error_from_reply(wire.Reply(error="com.example.New"))
    assert unknown.code is ErrorCode.UNKNOWN_ERROR and unknown.params == {"name": "com.example.New"}


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_protocol_error(data: bytes) -> None:
    try:
        wire.decode_call(data)
    except MfpsecError as exc:
        assert exc.code is ErrorCode.PROTOCOL_ERROR


def test_deep_nesting_is_a_protocol_error() -> None:
    with pytest.raises(MfpsecError) as info:
        wire.decode_call(b'{"method":"a.b.C","parameters":' + b"[" * 10000)
    assert info.value.code is ErrorCode.PROTOCOL_ERROR


def test_null_for_an_input_with_a_default_means_the_default() -> None:
    """The IDL shows such inputs as `?type`: a client may send null, and it must neither
    fail nor be taken as a value."""
    from mfpsecd.wipe import api as wipe

    decoder = msgspec.json.Decoder(wipe.PurgeParams)
    params = wire.decode_params(
        msgspec.Raw(b'{"target":"d1","level":null,"mode":null,"password":null,"confirm":true}'),
        decoder,
    )
    assert params == wipe.PurgeParams("d1", confirm=True)
    given = wire.decode_params(msgspec.Raw(b'{"target":"d1","password":"cHc="}'), decoder)
    assert given.password == bytearray(b"pw")
    # A required input stays required, null or not, and a wrong type stays wrong.
    for bad, field in [
        (b'{"target":null}', "target"),
        (b'{"level":null}', "target"),
        (b'{"target":"d1","mode":"x"}', "mode"),
        (b'{"target":"d1","mode":null,"level":"x"}', "level"),
    ]:
        with pytest.raises(MfpsecError) as exc:
            wire.decode_params(msgspec.Raw(bad), decoder)
        assert exc.value.code is ErrorCode.INVALID_PARAMETER
        assert exc.value.params == {"parameter": field}, bad
