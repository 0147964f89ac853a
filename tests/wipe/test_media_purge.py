"""The purge backend's tool calls, with the real hdparm against a regular file: it parses
its arguments, reads the drive password, and only then fails at the ATA ioctl. What the
tools said goes into the audit log and the signed certificate, so the one-time drive
password must never be in it, nor on a command line any process can read."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.base.config.schema import MediumKind
from mfpsecd.wipe.backends import media_purge
from mfpsecd.wipe.backends.media_purge import REDACTED, DevicePurger, read_blocks
from mfpsecd.wipe.model.purge_plan import PurgeMethod
from mfpsecd.wipe.ports import MediaInfo

pytestmark = pytest.mark.skipif(shutil.which("hdparm") is None, reason="needs hdparm")
PASSWORD = "0f1e2d3c4b5a6978"


def _info(path: Path) -> MediaInfo:
    return MediaInfo(
        id="sata0",
        path=path,
        medium=MediumKind.SSD,
        sanitizable=True,
        size_bytes=path.stat().st_size,
        logical_block=512,
        rotational=False,
        transport="ata",
        model="",
        serial="",
        in_use="",
    )


@pytest.fixture
def drive(tmp_path: Path) -> Path:
    path = tmp_path / "sda.img"
    path.write_bytes(os.urandom(1 << 20))
    return path


@pytest.mark.parametrize("still_enabled", [True, False])
def test_the_drive_password_is_read_from_stdin_and_never_recorded(
    drive: Path, monkeypatch: pytest.MonkeyPatch, still_enabled: bool
) -> None:
    argvs: list[list[str]] = []
    run = subprocess.run

    def spy(argv: list[str], **kwargs: Any) -> Any:
        argvs.append(list(argv))
        return run(argv, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    said = media_purge._ata_security_erase(
        drive, PurgeMethod.ATA_SECURITY_ERASE_ENHANCED, PASSWORD, 30, lambda: still_enabled
    )
    assert PASSWORD not in said
    # hdparm echoes the password it was given: it arrived, by stdin, and was blanked.
    assert said.count(f'password="{REDACTED}"') == (3 if still_enabled else 2), said
    assert all(PASSWORD not in arg for argv in argvs for arg in argv)
    # A drive left with our password after a failed erase has it removed: it would
    # otherwise lock at its next power-on under a password nobody keeps.
    expected = ["--security-set-pass", "--security-erase-enhanced"]
    assert [a[-2] for a in argvs] == expected + (["--security-disable"] if still_enabled else [])
    assert said.startswith("hdparm --user-master: exit ")


def test_ata_sanitize_overwrite_arguments_are_accepted_by_hdparm(drive: Path) -> None:
    said = DevicePurger().issue(_info(drive), PurgeMethod.ATA_SANITIZE_OVERWRITE, "", 30)
    # exit 22 with "missing PATTERN" or "invalid PATTERN format" would be hdparm refusing
    # the arguments; a regular file fails later, at the ioctl.
    assert "PATTERN" not in said and "exit 22" not in said, said


def test_blocks_are_read_one_at_a_time(drive: Path) -> None:
    blocks = read_blocks(drive, iter([0, 4096, 8192]), 4096)
    first = next(blocks)
    assert first == (0, drive.read_bytes()[:4096])
    assert [off for off, _ in blocks] == [4096, 8192]
    with pytest.raises(OSError, match="short read"):
        list(read_blocks(drive, [(1 << 20) - 512], 4096))
