"""Passwords travel as base64 of their printable-ASCII text (issue 25: the IDL is the
contract). A client that sends the plain text instead, where it happens to be valid
base64, is told its parameter is wrong, and the attempt does not count towards the
account's lockout; a rightly encoded wrong password still does."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.client import Connection
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW

CONFIG = {"auth": {"argon2_memory_kib": 8192, "argon2_iterations": 1}}


def _failures(d: ds.DaemonProcess) -> int:
    r = ds.mfpsec(d.socket_path, "users", "list", "--json")
    assert r.returncode == 0, r.stderr
    [admin] = [u for u in json.loads(r.stdout) if u["user"] == "admin"]
    return int(admin["failures"])


def test_a_plain_text_password_is_an_invalid_parameter_not_a_failed_login(
    short_tmp: Path,
) -> None:
    plain = "Password2026"  # a plain text that is also valid base64, of binary bytes
    assert not base64.b64decode(plain, validate=True).isascii()
    with ds.running(short_tmp / "d", config=CONFIG, tpm="none") as d:
        ok = ds.mfpsec(
            d.socket_path, "users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW
        )
        assert ok.returncode == 0, ok.stderr
        with Connection(d.socket_path) as conn:
            with pytest.raises(MfpsecError) as refused:
                conn.call("io.mfpsecd.Auth.Login", {"user": "admin", "password": plain})
            assert refused.value.code is ErrorCode.INVALID_PARAMETER
            assert refused.value.params.get("parameter") == "password"
            assert _failures(d) == 0
            encoded = base64.b64encode(b"Wrong-password-2026").decode()
            with pytest.raises(MfpsecError) as wrong:
                conn.call("io.mfpsecd.Auth.Login", {"user": "admin", "password": encoded})
            assert wrong.value.code is ErrorCode.AUTHENTICATION_FAILED
            assert _failures(d) == 1
            right = base64.b64encode(ADMIN_PW.encode()).decode()
            conn.call("io.mfpsecd.Auth.Login", {"user": "admin", "password": right})
