from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfpsecd.base.config.schema import BoardProfile, Config, parse
from mfpsecd.base.errors import ErrorCode, MfpsecError


def err(data: dict[str, Any], schema: type = Config) -> str:
    with pytest.raises(MfpsecError) as info:
        parse(data, schema, "f.toml")
    assert info.value.code is ErrorCode.CONFIG_INVALID
    return info.value.message


def test_defaults() -> None:
    c = parse({}, Config, "f.toml")
    assert c.ipc.max_message_bytes == 1 << 20
    assert c.ipc.max_connections == 64


def test_messages_name_the_key_path() -> None:
    assert (
        err({"ipc": {"max_connections": 5000}})
        == "f.toml: ipc.max_connections: expected int <= 4096"
    )
    assert (
        err({"ipc": {"max_connections": "many"}})
        == "f.toml: ipc.max_connections: expected int, got str"
    )
    assert err({"ipc": {"bogus": 1}}) == "f.toml: ipc.bogus: unknown key"
    assert err({"nosuchsection": {}}) == "f.toml: nosuchsection: unknown key"
    assert err({"access": {"panel_users": ["ok", "bad name!"]}}).startswith(
        "f.toml: access.panel_users[1]:"
    )


BOARD = {
    "board": {"name": "b", "kind": "simulated"},
    "paths": {"state_dir": "s", "run_dir": "r"},
    "tpm": {"backend": "none"},
}


def test_board_profile_paths_in_lists() -> None:
    parse(BOARD, BoardProfile, "b.toml")
    bad = {
        **BOARD,
        "disks": [
            {"id": "d0", "path": "x", "medium": "hdd"},
            {"id": "d1", "path": "y", "medium": "floppy"},
        ],
    }
    assert err(bad, BoardProfile).startswith("f.toml: disks[1].medium: invalid enum value")
    assert (
        err({k: v for k, v in BOARD.items() if k != "tpm"}, BoardProfile)
        == "f.toml: tpm: missing required key"
    )


def test_hw_profiles_in_the_tree_are_valid() -> None:
    import tomllib

    from tests.support.daemon import ROOT

    for path in (ROOT / "hw").glob("*.toml"):
        data = tomllib.loads(path.read_text())
        parse(data, BoardProfile if "board" in data and "paths" in data else Config, str(path))


toml_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["daemon", "ipc", "access", "state", "x"]),
        st.dictionaries(st.text(max_size=20), toml_like, max_size=4),
        max_size=4,
    )
)
def test_any_document_is_accepted_or_gets_a_config_error(data: dict[str, Any]) -> None:
    try:
        parse(data, Config, "f.toml")
    except MfpsecError as exc:
        assert exc.code is ErrorCode.CONFIG_INVALID
        assert exc.params["key"]


def test_a_user_in_two_peer_classes_is_refused() -> None:
    """An agent also listed as the panel would read the codes and approve itself."""
    from mfpsecd.base.config.loader import admission_rules

    both = parse(
        {"access": {"panel_users": [64041], "remote_agent_users": [64042, 64041]}}, Config, "f"
    )
    with pytest.raises(MfpsecError) as exc:
        admission_rules(both)
    assert exc.value.code is ErrorCode.CONFIG_INVALID
    assert exc.value.params["key"] == "access.remote_agent_users"
    apart = parse({"access": {"panel_users": [64041], "fleet_agent_users": [64043]}}, Config, "f")
    rules = admission_rules(apart)
    assert rules.panel_uids == {64041} and rules.fleet_agent_uids == {64043}
