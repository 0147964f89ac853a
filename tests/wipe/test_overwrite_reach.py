"""Where an in-place overwrite reaches the data's blocks (W-1): the filesystem decides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mfpsecd.base.mounts import mount_of, mounts
from mfpsecd.wipe.model.overwrite_plan import overwrite_defeated_by


@pytest.mark.parametrize(
    ("fstype", "options", "defeated"),
    [
        ("ext4", "rw,relatime,rw,errors=remount-ro", False),
        ("ext4", "rw,relatime,rw,data=journal", True),
        ("ext3", "rw,rw,data=journal", True),
        ("ext4", "rw,rw,data=ordered", False),
        ("xfs", "rw,rw,attr2,inode64", False),
        ("btrfs", "rw,rw,ssd,space_cache=v2", True),
        ("zfs", "rw,rw,xattr", True),
        ("f2fs", "rw,rw", True),
        ("overlay", "rw,rw,lowerdir=/a,upperdir=/b", True),
        ("tmpfs", "rw,rw,size=10m", False),
    ],
)
def test_which_filesystems_defeat_an_in_place_overwrite(
    fstype: str, options: str, defeated: bool
) -> None:
    assert bool(overwrite_defeated_by(fstype, options)) is defeated


MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 22 8:2 / /var/lib rw,relatime shared:2 - btrfs /dev/sda2 rw,ssd,space_cache=v2
31 30 8:3 / /var/lib/mfp\040store rw,relatime shared:3 - ext4 /dev/sda3 rw,data=journal
32 22 0:5 / /var/lib2 rw - tmpfs tmpfs rw
"""


def test_the_mount_a_path_lives_on(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    found = mount_of(info, Path("/var/lib/mfpsecd/store"))
    assert found is not None and (found.point, found.fstype) == ("/var/lib", "btrfs")
    found = mount_of(info, Path("/var/lib/mfp store/objects"))  # \040: a blank
    assert found is not None and found.fstype == "ext4" and "data=journal" in found.options
    found = mount_of(info, Path("/var/lib2/x"))  # a prefix of the name is not a parent
    assert found is not None and found.point == "/var/lib2"
    found = mount_of(info, Path("/etc"))
    assert found is not None and found.point == "/"
    assert mount_of(tmp_path / "missing", Path("/")) is None


def test_mount_points_are_bytes_with_octal_escapes(tmp_path: Path) -> None:
    """A mount point that is not UTF-8 (a USB label) does not stop the parse, and one
    that is (accents) is matched as the path it is, not garbled."""
    info = tmp_path / "mountinfo"
    info.write_bytes(
        b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        b"40 22 8:9 / /media/\xff\xfelabel rw - vfat /dev/sdb1 rw\n"
        b"41 22 8:2 / /srv/donn\xc3\xa9es rw - btrfs /dev/sda2 rw\n"
    )
    found = mount_of(info, Path("/srv/donn\u00e9es/store"))
    assert found is not None and found.fstype == "btrfs"
    odd = mount_of(info, Path(os.fsdecode(b"/media/\xff\xfelabel/x")))
    assert odd is not None and odd.fstype == "vfat"
    assert mounts(info)["8:2"] == "/srv/donn\u00e9es"
