"""Acceptance 5 of the key chain: a simulated USB stick (umockdev) appears and goes away;
the daemon offers it as a backup target, takes a backup on it, and withdraws it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mfpsecd.client import Connection
from mfpsecd.keys import api as keys
from tests.support import daemon as ds
from tests.support.umockdev_testbed import UmockdevBed, requires_umockdev

pytestmark = requires_umockdev


class UsbTestbed(UmockdevBed):
    def __init__(self) -> None:
        super().__init__("umockdev_bed.py")


@pytest.fixture
def testbed() -> Iterator[UsbTestbed]:
    bed = UsbTestbed()
    try:
        yield bed
    finally:
        bed.close()


def test_usb_stick_is_offered_used_for_a_backup_and_withdrawn(
    short_tmp: Path, testbed: UsbTestbed
) -> None:
    mnt = short_tmp / "media" / "stick"
    mnt.mkdir(parents=True)
    # umockdev emulates sysfs, udev and uevents but not mounts: the board reads its mount
    # table from proc_root, where this one says the stick's partition (8:17) is mounted.
    proc = short_tmp / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(
        f"36 25 8:17 / {mnt} rw,nosuid,nodev - vfat /dev/sdb1 rw\n"
        "25 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw\n"
    )
    with ds.running(
        short_tmp / "d",
        tpm="none",
        argv_prefix=["umockdev-wrapper"],
        env={"UMOCKDEV_DIR": testbed.dir},
        board={"extra": {"paths": {"proc_root": str(proc)}}, "usb_ports": ["devices/1-1"]},
    ) as d:
        with Connection(d.socket_path, timeout=30) as conn:
            stream = (r.targets for r in conn.call_more(keys.WATCH_BACKUP_TARGETS))
            assert next(stream) == []
            testbed.send("add")
            (target,) = next(stream)
            assert (target.device, target.filesystem, target.mount_point) == (
                "/dev/sdb1",
                "vfat",
                str(mnt),
            )
            assert (target.vendor, target.serial, target.size_bytes) == (
                "SanDisk",
                "4C530001",
                15631360 * 512,
            )
            listed = ds.mfpsec(d.socket_path, "keys", "targets")
            assert target.id in listed.stdout and str(mnt) in listed.stdout

            r = ds.mfpsec(
                d.socket_path,
                "keys",
                "backup",
                "--to",
                target.id,
                "--passphrase-file",
                "-",
                stdin="Usb-backup-passphrase-1",
            )
            assert r.returncode == 0, r.stderr
            assert len(list(mnt.glob("mfpsecd-keys-*.mfpkb"))) == 1

            testbed.send("remove")
            assert next(stream) == []
        gone = ds.mfpsec(
            d.socket_path,
            "keys",
            "backup",
            "--to",
            target.id,
            "--passphrase-file",
            "-",
            stdin="Usb-backup-passphrase-1",
        )
        assert gone.returncode != 0 and "BackupTargetUnusable" in gone.stderr
