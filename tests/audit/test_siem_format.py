"""CEF and LEEF bodies in RFC 5424 messages: parsed back by independent parsers to the
original fields, with every character that needs escaping."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Record, Subject
from mfpsecd.audit.model import siem
from tests.support import siem_parse

EPOCH_MS = str(
    int(dt.datetime(2026, 11, 22, 3, 4, 5, 123000, tzinfo=dt.UTC).timestamp()) * 1000 + 123
)
NASTY = 'pipe|equals=back\\slash\nnew line\r "quoted" ]bracket^caret\ttab é漢字'
LEEF_NASTY = NASTY.replace("\n", "\\u000a").replace("\r", "\\u000d").replace("\t", "\\u0009")


def _record(obj: str = NASTY, note: str = NASTY) -> Record:
    return Record(
        seq=42,
        prev="00" * 32,
        time="2026-11-22T03:04:05.123456Z",
        type=EventType.AUTH_LOCKOUT,
        outcome=Outcome.FAILURE,
        subject=Subject(
            origin="network", user="j|d=e\\", role="user", uid=-1, pid=-1, address="2001:db8::7"
        ),
        object=obj,
        details={"attempts": 3, "note": note, "ok": False},
    )


@pytest.mark.parametrize("fmt", [siem.Format.CEF, siem.Format.LEEF])
def test_messages_parse_back_to_the_record(fmt: siem.Format) -> None:
    r = _record()
    framed = siem.octet_counted(
        siem.syslog_message(r, fmt, hostname="mfp-01", version="0.1.0", procid="77")
    )
    (message,) = siem_parse.deframe(framed + siem.octet_counted(b"x")[:0])
    s = siem_parse.syslog(message)
    assert s["pri"] == str(13 * 8 + 2)  # log audit, critical: a failed lockout is severity 10
    assert (s["time"], s["host"], s["app"], s["procid"], s["msgid"]) == (
        r.time,
        "mfp-01",
        "mfpsecd",
        "77",
        "auth.lockout",
    )
    assert 'seq="42"' in s["sd"]
    if fmt is siem.Format.CEF:
        header, ext = siem_parse.cef(s["msg"])
        assert header == [
            "mfpsecd project",
            "mfpsecd",
            "0.1.0",
            "auth.lockout",
            "auth lockout",
            "10",
        ]
        assert ext["cs1"] == NASTY and ext["cs1Label"] == "object"
        assert (ext["suser"], ext["src"], ext["externalId"]) == ("j|d=e\\", "2001:db8::7", "42")
        assert ext["duser"] == NASTY  # the account locked
        assert ext["rt"] == EPOCH_MS
        details = json.loads(ext["cs2"])
    else:
        header, attrs = siem_parse.leef(s["msg"])
        # ^ occurs in a value: the message declares the next delimiter instead
        assert header == ["mfpsecd project", "mfpsecd", "0.1.0", "auth.lockout", "~"]
        # LEEF has no escapes in values: ^, =, \ arrive as they are; control characters
        # (which relays rewrite) are shown as \uXXXX.
        assert attrs["cs1"] == LEEF_NASTY
        assert (attrs["usrName"], attrs["suser"], attrs["src"], attrs["seq"], attrs["sev"]) == (
            LEEF_NASTY,
            "j|d=e\\",
            "2001:db8::7",
            "42",
            "10",
        )
        assert (attrs["devTime"], attrs["devTimeFormat"]) == (
            "2026-11-22T03:04:05.123+0000",
            "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
        )
        details = json.loads(attrs["cs2"])
    assert details == {"attempts": 3, "note": NASTY, "ok": False}
    # Nothing breaks the line-oriented formats: the message holds no raw line break.
    assert b"\n" not in message and b"\r" not in message


def test_octet_counting_frames_many_messages() -> None:
    msgs = [
        siem.syslog_message(
            _record(f"job {i} é"), siem.Format.CEF, hostname="h", version="1", procid="1"
        )
        for i in range(5)
    ]
    stream = b"".join(siem.octet_counted(m) for m in msgs)
    assert siem_parse.deframe(stream) == msgs


@pytest.mark.parametrize("fmt", [siem.Format.CEF, siem.Format.LEEF])
def test_a_failed_login_names_the_account_it_tried(fmt: siem.Format) -> None:
    r = Record(
        seq=7,
        prev="00" * 32,
        time="2026-11-22T03:04:05.123456Z",
        type=EventType.AUTH_LOGIN,
        outcome=Outcome.FAILURE,
        subject=Subject(origin="network", address="192.0.2.4"),
        object="admin",
        details={"method": "password", "reason": "wrong password"},
    )
    s = siem_parse.syslog(siem.syslog_message(r, fmt, hostname="h", version="1", procid="-"))
    assert s["procid"] == "-"
    if fmt is siem.Format.CEF:
        _, ext = siem_parse.cef(s["msg"])
        assert ext["duser"] == "admin" and "suser" not in ext
    else:
        _, attrs = siem_parse.leef(s["msg"])
        assert attrs["usrName"] == "admin" and "suser" not in attrs


def test_leef_names_the_caller_as_usrname_when_no_account_is_concerned() -> None:
    r = Record(
        seq=8,
        prev="00" * 32,
        time="2026-11-22T03:04:05Z",
        type=EventType.MANAGEMENT,
        outcome=Outcome.SUCCESS,
        subject=Subject(origin="panel", user="alice", role="admin"),
        object="policy",
        details={},
    )
    _, attrs = siem_parse.leef(
        siem_parse.syslog(
            siem.syslog_message(r, siem.Format.LEEF, hostname="h", version="1", procid="9")
        )["msg"]
    )
    assert attrs["usrName"] == "alice" and attrs["devTime"] == "2026-11-22T03:04:05.000+0000"


def test_leef_declares_a_delimiter_that_no_value_holds() -> None:
    def delimiter(obj: str) -> tuple[str, dict[str, str]]:
        message = siem.syslog_message(
            _record(obj, "plain"), siem.Format.LEEF, hostname="h", version="1", procid="1"
        )
        header, attrs = siem_parse.leef(siem_parse.syslog(message)["msg"])
        return header[4], attrs

    assert delimiter("plain")[0] == "^"
    assert delimiter("a^b")[0] == "~"
    # Every candidate taken: the first one is shown as an escape where a value holds it.
    used, attrs = delimiter("^~`!$")
    assert used == "^" and attrs["cs1"] == "\\u005e~`!$"


DEVICE = siem.Device(
    model="MFP-9000 | A3=color", serial="SN\\0042", fingerprint="ab" * 32, firmware="4.2.0"
)


@pytest.mark.parametrize("fmt", [siem.Format.CEF, siem.Format.LEEF])
def test_every_message_names_the_device_it_comes_from(fmt: siem.Format) -> None:
    """A SIEM receiving thousands of MFPs tells them apart, and ties an event to the key
    that signs the device's evidence: model, serial, identity fingerprint and firmware
    version in every message (issue 29)."""
    message = siem.syslog_message(
        _record(), fmt, hostname="mfp-01", version="0.1.0", procid="1", device=DEVICE
    )
    msg = siem_parse.syslog(message)["msg"]
    if fmt is siem.Format.CEF:
        _, f = siem_parse.cef(msg)
        assert (f["dvchost"], f["deviceExternalId"]) == ("mfp-01", "SN\\0042")
        assert (f["cs3Label"], f["cs3"]) == ("deviceModel", "MFP-9000 | A3=color")
        assert (f["cs4Label"], f["cs4"]) == ("deviceIdentity", "ab" * 32)
        assert (f["cs5Label"], f["cs5"]) == ("firmwareVersion", "4.2.0")
    else:
        _, f = siem_parse.leef(msg)
        assert (f["deviceHostName"], f["deviceExternalId"]) == ("mfp-01", "SN\\0042")
        assert "identHostName" not in f
        assert (f["deviceModel"], f["deviceIdentity"]) == ("MFP-9000 | A3=color", "ab" * 32)
        assert f["firmwareVersion"] == "4.2.0"
        assert "cs3Label" not in f


def test_a_device_without_a_serial_is_known_by_its_identity_key() -> None:
    device = siem.Device(model="m", serial="", fingerprint="cd" * 32, firmware="")
    message = siem.syslog_message(
        _record(), siem.Format.CEF, hostname="h", version="1", procid="1", device=device
    )
    _, f = siem_parse.cef(siem_parse.syslog(message)["msg"])
    assert f["deviceExternalId"] == "cd" * 32 and "cs5" not in f


@pytest.mark.parametrize("fmt", [siem.Format.CEF, siem.Format.LEEF])
def test_a_sanitization_certificate_travels_with_its_digest(fmt: siem.Format) -> None:
    digest = "0f" * 32
    r = Record(
        seq=7,
        prev="00" * 32,
        time="2026-11-22T03:04:05.123456Z",
        type=EventType.SANITIZE,
        outcome=Outcome.SUCCESS,
        subject=Subject(origin="daemon"),
        object="job-1",
        details={"phase": "result", "result": "completed", "certificate_sha256": digest},
    )
    message = siem.syslog_message(r, fmt, hostname="h", version="1", procid="1", device=DEVICE)
    msg = siem_parse.syslog(message)["msg"]
    parse = siem_parse.cef if fmt is siem.Format.CEF else siem_parse.leef
    _, f = parse(msg)
    assert (f["fileHash"], f["fileType"]) == (digest, "sanitization-certificate")
    assert f["fname"] == "job-1"
