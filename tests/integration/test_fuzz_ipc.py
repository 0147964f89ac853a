"""Hostile input against the running daemon: every message gets an error or a closed
connection, nothing hangs, the daemon keeps answering and its memory stays flat."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfpsecd.client import Connection
from mfpsecd.system import api as system
from tests.support import daemon as ds

pytestmark = pytest.mark.slow

METHODS = [
    "io.mfpsecd.System.GetStatus",
    "io.mfpsecd.System.WatchStatus",
    "org.varlink.service.GetInfo",
    "org.varlink.service.GetInterfaceDescription",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
method_names = (
    st.sampled_from(METHODS)
    | st.text(max_size=60)
    | st.sampled_from(
        [
            "io.mfpsecd.System.Nope",
            "no.such.Interface.Method",
            "io.mfpsecd.System",
            "",
            ".",
            "org.varlink.service.GetInfo.",
            "io.mfpsecd.System.getStatus",
        ]
    )
)
calls = st.fixed_dictionaries(
    {"method": method_names | json_values},
    optional={
        "parameters": json_values
        | st.dictionaries(st.sampled_from(["interface", "x", "more"]), json_values, max_size=3),
        "more": json_values | st.booleans(),
        "oneway": json_values | st.booleans(),
        "upgrade": json_values | st.booleans(),
        "extra": json_values,
    },
)


def _encode(doc: object) -> bytes:
    return json.dumps(doc).encode()


message = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\0", b"")),  # not JSON at all
    json_values.map(_encode),  # JSON, but not a call object
    calls.map(_encode),  # call-shaped, hostile fields
    st.sampled_from(
        [
            b"{",
            b'{"method":',
            b"[]",
            b'"x"',
            b"null",
            b"{}" * 50,
            b"\xff\xfe",
            b'{"method":"io.mfpsecd.System.GetStatus","parameters":' + b"[" * 5000,
        ]
    ),
)
# A batch is pipelined on one connection; it may end without its NUL (then half-closed).
batches = st.tuples(st.lists(message, min_size=1, max_size=40), st.booleans())


def exchange(path: str, messages: list[bytes], drop_last_nul: bool) -> list[dict[str, object]]:
    payload = b"\0".join(messages) + (b"" if drop_last_nul else b"\0")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may close early (protocol error) before reading it all
        data = bytearray()
        while True:  # a hang would end in TimeoutError and fail the test
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    assert data == b"" or data.endswith(b"\0"), "reply not NUL-terminated"
    replies = [json.loads(r) for r in bytes(data).split(b"\0")[:-1]]
    assert len(replies) <= len(messages)
    for r in replies:
        assert isinstance(r, dict) and ("error" in r or "parameters" in r), r
    return replies


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ds.DaemonProcess]:
    root = Path(tmp_path_factory.mktemp("fz", numbered=True))
    with ds.running(root / "d", config={"ipc": {"max_connections": 16}}) as d:
        yield d


def test_ten_thousand_hostile_messages(fuzz_daemon: ds.DaemonProcess) -> None:
    path = fuzz_daemon.socket_path
    sent = {"messages": 0, "errors": 0}

    # A well-behaved client stays connected throughout, with a partial message pending
    # (after a first call: a connection that never says a whole message is closed after
    # ipc.first_call_timeout_s, see test_availability).
    bystander = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bystander.connect(path)
    bystander.settimeout(10)
    bystander.sendall(b'{"method":"io.mfpsecd.System.GetStatus"}\0')
    assert b'"parameters"' in bystander.recv(65536)
    bystander.sendall(b'{"method":"io.mfpsecd.Sys')

    @settings(
        max_examples=600,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(batches)
    def fuzz(batch: tuple[list[bytes], bool]) -> None:
        messages, drop_nul = batch
        replies = exchange(path, messages, drop_nul)
        sent["messages"] += len(messages)
        sent["errors"] += sum(1 for r in replies if "error" in r)

    for _ in range(3):  # warm-up: let allocator pools and caches reach steady state
        exchange(path, [_encode({"method": "io.mfpsecd.System.Nope"})] * 300, False)
    rss_before = fuzz_daemon.rss_kib()
    while sent["messages"] < 10_000:
        fuzz()
    rss_after = fuzz_daemon.rss_kib()

    assert sent["messages"] >= 10_000
    assert sent["errors"] > 1000  # the generator really produced hostile input
    with Connection(path) as conn:
        assert conn.call(system.GET_STATUS).state.value == "ready"
    # The bystander's connection survived and completes its call.
    bystander.sendall(b'tem.GetStatus"}\0')
    assert b'"parameters"' in bystander.recv(65536)
    bystander.close()
    assert rss_after <= rss_before * 1.10, (rss_before, rss_after)
    print(
        f"fuzz: {sent['messages']} messages, {sent['errors']} error replies, "
        f"RSS {rss_before} -> {rss_after} KiB"
    )


def test_oversize_messages(fuzz_daemon: ds.DaemonProcess) -> None:
    big = b'{"method":"io.mfpsecd.System.GetStatus","parameters":{"x":"' + b"a" * (1 << 20)
    for tail in (b'"}}', b""):  # with and without the terminating NUL
        replies = exchange(fuzz_daemon.socket_path, [big + tail], drop_last_nul=not tail)
        assert replies == [
            {"error": "io.mfpsecd.System.MessageTooLarge", "parameters": {"max_bytes": 1 << 20}}
        ]


def test_unsupported_upgrade_and_unknown_method(fuzz_daemon: ds.DaemonProcess) -> None:
    replies = exchange(
        fuzz_daemon.socket_path,
        [
            _encode({"method": "io.mfpsecd.System.GetStatus", "upgrade": True}),
            _encode({"method": "io.mfpsecd.System.Nope"}),
            _encode({"method": "com.example.Other.Call"}),
            _encode({"method": "io.mfpsecd.System.GetStatus", "parameters": {"x": 1}}),
            _encode({"method": "io.mfpsecd.System.WatchStatus"}),
            _encode({"method": "io.mfpsecd.System.GetStatus", "oneway": True}),
            b"not json",
            _encode({"method": "io.mfpsecd.System.GetStatus"}),  # after the close: never answered
        ],
        False,
    )
    assert [r.get("error") for r in replies] == [
        "org.varlink.service.InvalidParameter",
        "org.varlink.service.MethodNotFound",
        "org.varlink.service.InterfaceNotFound",
        "org.varlink.service.InvalidParameter",
        "org.varlink.service.ExpectedMore",
        "io.mfpsecd.System.ProtocolError",
    ]
    assert replies[0]["parameters"] == {"parameter": "upgrade"}
    assert replies[3]["parameters"] == {"parameter": "x"}
