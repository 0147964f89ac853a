"""An optional part configured without its package is refused at start, by name (issue
26: an image may leave out SNMP, card login or the PDF renderer)."""

from __future__ import annotations

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.optional import require


def test_a_missing_package_is_a_configuration_error_naming_the_key() -> None:
    with pytest.raises(MfpsecError) as exc:
        require("mfpsec_not_installed", key="notify.snmp", part="SNMP traps")
    assert exc.value.code is ErrorCode.CONFIG_INVALID
    assert exc.value.params["key"] == "notify.snmp"
    assert "mfpsec_not_installed" in exc.value.message and "SNMP traps" in exc.value.message


def test_an_installed_package_passes() -> None:
    require("msgspec", key="anything", part="the daemon itself")
