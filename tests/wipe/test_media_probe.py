"""The probe's check of what a whole-device purge would also erase: the controller's other
namespaces, found in a sysfs tree (here a copy of the layout the kernel builds) and the
mount table."""

from __future__ import annotations

from pathlib import Path

from mfpsecd.wipe.backends.media_probe import _siblings_in_use


def _namespace(ctrl: Path, name: str, devnum: str, partitions: dict[str, str]) -> Path:
    ns = ctrl / name
    (ns / "holders").mkdir(parents=True)
    (ns / "dev").write_text(devnum + "\n")
    for part, part_devnum in partitions.items():
        (ns / part / "holders").mkdir(parents=True)
        (ns / part / "dev").write_text(part_devnum + "\n")
        (ns / part / "partition").write_text("1\n")
    return ns


def test_other_namespaces_in_use_are_named(tmp_path: Path) -> None:
    ctrl = tmp_path / "sys" / "devices" / "pci0000:00" / "0000:00:04.0" / "nvme" / "nvme0"
    target = _namespace(ctrl, "nvme0n1", "259:0", {})
    _namespace(ctrl, "nvme0n2", "259:1", {"nvme0n2p1": "259:2", "nvme0n2p2": "259:3"})
    held = _namespace(ctrl, "nvme0n3", "259:4", {})
    (ctrl / "ng0n1").mkdir()  # the generic char node: no block device
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    mountinfo = proc / "self" / "mountinfo"
    mountinfo.write_text("")
    assert _siblings_in_use(target, proc) == ""

    mountinfo.write_text(
        "22 1 259:3 / / rw,relatime shared:1 - ext4 /dev/nvme0n2p2 rw\n"
        "23 22 259:0 / /mnt/target rw - ext4 /dev/nvme0n1 rw\n"
    )
    (held / "holders" / "dm-0").mkdir()
    assert _siblings_in_use(target, proc) == ("nvme0n2p2 is mounted at /; nvme0n3 is held by dm-0")
