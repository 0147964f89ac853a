"""Untrusted strings on a person's terminal (cli.common.shown): controls, format
characters and the backslash become visible escapes; everything printable stays."""

from __future__ import annotations

import click
import pytest

from mfpsecd.audit.api import AuditEntry, AuditSubject
from mfpsecd.audit.cli import _render
from mfpsecd.base.escape import shown


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        ("page.pdf", "page.pdf"),
        ("Fiche été 😀", "Fiche été 😀"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # OSC: would retitle the terminal
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("abc\u202efdp.exe", "abc\\u202efdp.exe"),  # right-to-left override
        ("C:\\x1b", "C:\\\\x1b"),  # a literal backslash cannot pose as an escape
    ],
)
def test_shown_escapes_what_a_terminal_would_act_on(raw: str, seen: str) -> None:
    assert shown(raw) == seen
    assert shown(raw).isprintable()


def test_an_audit_record_with_a_forged_user_name_stays_one_line() -> None:
    entry = AuditEntry(
        seq=7,
        time="2026-12-04T10:00:00Z",
        type="login",
        outcome="failure",
        subject=AuditSubject(
            origin="panel",
            user="eve\n      8 2026-12-04T10:00:01Z  login",
            role="",
            uid=-1,
            pid=-1,
            address="",
        ),
        object="x\x1b[2J",
        details={"reason": "wrong password\r\x1b[1A"},
    )
    line = click.unstyle(_render(entry))  # the outcome's colour is ours
    assert "\n" not in line and "\x1b" not in line and "\r" not in line
    assert "eve\\x0a" in line and "x\\x1b[2J" in line


def test_error_parameters_are_shown_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """An error's parameters carry what the daemon was handed (a certificate's unknown
    field, a device's string): the one line on stderr is escaped too."""
    from mfpsecd.base.errors import ErrorCode, MfpsecError
    from mfpsecd.cli.common import reports_errors

    @reports_errors
    def fails() -> None:
        raise MfpsecError(
            ErrorCode.WIPE_CERTIFICATE_INVALID, reason="malformed: unknown field `\x1b]0;owned\x07`"
        )

    with pytest.raises(SystemExit):
        fails()
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]0;owned\\x07" in err
