"""Sanitization of real block devices (loop devices, as root): every mode read back from
the device after each pass, and the refusals that protect a disk in use (mounted, or a
partition named instead of the whole disk)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mfpsecd.base.config.schema import DiskSection, MediumKind
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateConnection
from mfpsecd.wipe.jobs import COMPLETED
from mfpsecd.wipe.medium_marker import MARKER_BYTES
from mfpsecd.wipe.model.overwrite_plan import DISCARD_MODES, PassKind
from tests.support.wipe_stack import ENGINEER, finished, stack

pytestmark = pytest.mark.root

SIZE = (4 << 20) + 8192  # one full engine chunk and a partial one


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Path]:
    """A loop device over a fresh image: a real block device the engine opens O_EXCL and
    writes with O_DIRECT."""
    image = tmp_path / "backing.img"
    with image.open("wb") as f:
        f.write(b"\x5a" * SIZE)  # the "old data"
    device = Path(_run("losetup", "--find", "--show", str(image)))
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", str(device)], check=False)


def _disk(device: Path, medium: MediumKind = MediumKind.HDD) -> list[DiskSection]:
    return [DiskSection(id="lo", path=device.name, medium=medium, sanitizable=True)]


def _keys(conn: StateConnection) -> tuple[list[str], str]:
    """The passes' stream keys, and the medium marker's."""
    row = conn.execute("SELECT plan FROM wipe_jobs").fetchone()
    assert row is not None
    plan = json.loads(str(row[0]))
    return [step.get("key", "") for step in plan["steps"]], plan["marker"]["key"]


def _aes_stream(key_hex: str, size: int) -> bytes:
    enc = Cipher(algorithms.AES(bytes.fromhex(key_hex)), modes.CTR(bytes(16))).encryptor()
    return enc.update(bytes(size))


@pytest.mark.sfr("FDP_RIP.1")
@pytest.mark.spec("E-3", "W-1", "W-2")
@pytest.mark.parametrize("mode", sorted(DISCARD_MODES))
def test_every_mode_on_a_loop_device_reads_back_each_pass(
    tmp_path: Path, loop: Path, mode: int
) -> None:
    snapshots: list[bytes] = []

    async def scenario() -> None:
        async def look(step: int) -> None:
            snapshots.append(loop.read_bytes())

        async with stack(tmp_path, disks=_disk(loop), dev_root=Path("/dev"), before_step=look) as s:
            info = s.wipe.targets()[0]
            assert (info.size_bytes, info.transport, info.in_use) == (SIZE, "loop", "")
            view = await s.wipe.begin("lo", mode, ENGINEER)
            assert await finished(s.wipe, view.id) == COMPLETED
            keys, marker_key = await s.state.run(_keys)
        plan = DISCARD_MODES[mode]
        body = SIZE - MARKER_BYTES
        # The medium's marker (the last MARKER_BYTES) is written before the first pass,
        # which like every pass stops short of it; at the end it gets every pass too.
        marker = _aes_stream(marker_key, SIZE)[body:]
        # snapshots: the old data, then what each pass left (the last one before verify).
        assert snapshots[0] == b"\x5a" * body + marker
        after = [*snapshots[1 : len(plan.passes)], loop.read_bytes()]
        assert len(snapshots) == len(plan.passes) + 1  # one look before each step
        for k, p in enumerate(plan.passes):
            final = k == len(plan.passes) - 1
            expect = (
                bytes([p.byte]) * SIZE if p.kind is PassKind.BYTE else _aes_stream(keys[k], SIZE)
            )
            assert after[k] == (expect if final else expect[:body] + marker), (mode, k)

    asyncio.run(scenario())


def test_a_mounted_loop_device_is_refused_and_untouched(tmp_path: Path, loop: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    _run("mkfs.ext4", "-q", "-F", str(loop))
    _run("mount", str(loop), str(mnt))
    (mnt / "kept.txt").write_text("still here")
    try:

        async def mounted() -> None:
            async with stack(tmp_path / "a", disks=_disk(loop), dev_root=Path("/dev")) as s:
                assert s.wipe.targets()[0].in_use == f"mounted at {mnt}"
                with pytest.raises(MfpsecError) as info:
                    await s.wipe.begin("lo", 1, ENGINEER)
                assert info.value.code is ErrorCode.WIPE_TARGET_REFUSED
                assert info.value.params["reason"] == f"mounted at {mnt}"
                assert s.wipe.jobs() == []

        (tmp_path / "a").mkdir()
        asyncio.run(mounted())
    finally:
        _run("umount", str(mnt))
    _run("mount", "-o", "ro", str(loop), str(mnt))
    try:
        assert (mnt / "kept.txt").read_text() == "still here"
    finally:
        _run("umount", str(mnt))

    async def unmounted() -> None:
        async with stack(tmp_path / "b", disks=_disk(loop), dev_root=Path("/dev")) as s:
            view = await s.wipe.begin("lo", 1, ENGINEER)
            assert await finished(s.wipe, view.id) == COMPLETED
        assert loop.read_bytes() == bytes(SIZE)

    (tmp_path / "b").mkdir()
    asyncio.run(unmounted())


def test_a_partition_named_instead_of_the_disk_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "partitioned.img"
    with image.open("wb") as f:
        f.truncate(SIZE)
    subprocess.run(
        ["sfdisk", "-q", str(image)],
        input="label: dos\n,\n",
        text=True,
        check=True,
        capture_output=True,
    )
    device = Path(_run("losetup", "--find", "--show", "--partscan", str(image)))
    try:
        part = Path(f"{device}p1")
        for _ in range(200):  # the partition's node appears a moment later (or on a rescan)
            if part.exists():
                break
            subprocess.run(["partx", "-a", str(device)], check=False, capture_output=True)
            time.sleep(0.01)

        async def scenario() -> None:
            async with stack(tmp_path, disks=_disk(part), dev_root=Path("/dev")) as s:
                with pytest.raises(MfpsecError) as info:
                    await s.wipe.begin("lo", 1, ENGINEER)
                assert "a partition" in info.value.params["reason"]

        asyncio.run(scenario())
    finally:
        _run("losetup", "-d", str(device))
