"""SPEC U-1: the USB policy as the administrator writes it ([usb] in mfpsecd.toml), and
what is refused: an unknown category, a malformed identity, named by its key."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from mfpsecd.base.config.loader import load_config
from mfpsecd.base.config.schema import UsbSection, UsbUse
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.usb.model.policy import DEFAULT_RULE, ApprovedDevice, Category, PortRule
from mfpsecd.usb.settings import policy_from


def _load(tmp_path: Path, text: str) -> UsbSection:
    path = tmp_path / "mfpsecd.toml"
    path.write_text(text)
    return load_config(path).usb


def test_the_configuration_and_the_model_name_the_same_categories() -> None:
    assert set(get_args(UsbUse)) == {c.value for c in Category}


def test_without_a_usb_section_the_default_rule_applies() -> None:
    policy = policy_from(UsbSection())
    assert policy.default == DEFAULT_RULE and policy.ports == {} and policy.approved == ()


def test_ports_and_approved_devices_as_written(tmp_path: Path) -> None:
    section = _load(
        tmp_path,
        """
[[usb.ports]]
id = "card-reader"
allow = ["hid", "ccid"]

[[usb.ports]]
id = "service"
allow = ["mass_storage", "network"]

[[usb.approved]]
vendor = "0c27"
product = "3BFA"
serial = "A1"
port = "card-reader"
""",
    )
    policy = policy_from(section)
    assert policy.rule("card-reader") == PortRule(frozenset({Category.HID, Category.CCID}))
    assert policy.rule("service") == PortRule(frozenset({Category.MASS_STORAGE, Category.NETWORK}))
    assert policy.rule("front") == DEFAULT_RULE
    assert policy.approved == (ApprovedDevice(0x0C27, 0x3BFA, "A1", "card-reader"),)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[usb.ports]]\nid = "front"\nallow = ["hid", "firewire"]\n', "usb.ports[0].allow[1]"),
        ('[[usb.approved]]\nvendor = "0c27x"\nproduct = "3bfa"\n', "usb.approved[0].vendor"),
        ('[[usb.ports]]\nid = "front"\n', "usb.ports[0].allow"),
        ('[usb]\ncolour = "blue"\n', "usb.colour"),
    ],
)
def test_what_the_policy_cannot_mean_is_refused_by_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(MfpsecError) as info:
        _load(tmp_path, text)
    assert info.value.code is ErrorCode.CONFIG_INVALID
    assert info.value.params["key"] == key, info.value


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[usb.ports]]\nallow = ["hid"]\n', "usb.ports[0].id"),
        (
            '[[usb.ports]]\nid = "a"\nallow = ["hid"]\n[[usb.ports]]\nid = "a"\nallow = []\n',
            "usb.ports[1].id",
        ),
    ],
)
def test_a_port_rule_names_one_port_once(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(MfpsecError) as info:
        policy_from(_load(tmp_path, text))
    assert info.value.params["key"] == key
