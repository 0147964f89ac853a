"""The purge helper (issue 26 item 5): device commands and privileged reads run in a
short-lived process started per connection, the way systemd's Accept=yes socket
(mfpsecd-purge.socket) starts it; the daemon, without those capabilities, asks it over
the socket. Here systemd-socket-activate plays systemd's part and the helper is the real
`mfpsecd purge-helper` command; the devices are loop devices (the NVMe commands
themselves run in the QEMU guest, tests/wipe/test_media_qemu.py).

The helper is the last check before a device command and trusts nothing it is told:
who asks, which device, what is on it, and how the request is written."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mfpsecd.base.config.schema import MediumKind
from mfpsecd.wipe.backends.helper_messages import HelperReply, decode_reply
from mfpsecd.wipe.backends.helper_purger import HelperPurger
from mfpsecd.wipe.model.purge_plan import PurgeMethod
from mfpsecd.wipe.ports import MediaInfo
from mfpsecd.wipe.wiring import can_administer
from tests.support import other_uids

pytestmark = pytest.mark.root

DAEMON_UID = 65534  # the daemon's user in these tests (nobody)
STRANGER_UID = 65533
MFPSECD = Path(sys.executable).parent / "mfpsecd"


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@dataclass(frozen=True)
class Helper:
    socket: Path
    log: Path


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Helper]:
    """The helper's socket, one helper process per connection (--inetd: the connection is
    standard input, as StandardInput=socket gives it)."""
    # Where other uids can reach it (pytest's tmp_path is private to root).
    run_dir = Path(tempfile.mkdtemp(prefix="mfpsec-purge-test-", dir="/run"))
    run_dir.chmod(0o755)
    sock, log = run_dir / "purge.sock", tmp_path / "helper.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "systemd-socket-activate",
                "--inetd",
                "--accept",
                "--listen",
                str(sock),
                str(MFPSECD),
                "purge-helper",
                "--user",
                str(DAEMON_UID),
                "--read-timeout",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        assert sock.exists(), log.read_text()
        sock.chmod(0o666)  # the stranger below must reach the helper's own check
        yield Helper(sock, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(run_dir, ignore_errors=True)


def _image(tmp_path: Path, name: str, size: int = 8 << 20) -> Path:
    image = tmp_path / name
    with image.open("wb") as f:
        f.truncate(size)
    return image


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Path]:
    device = Path(_run("losetup", "--find", "--show", str(_image(tmp_path, "disk.img"))))
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", str(device)], check=False)


def _info(device: Path) -> MediaInfo:
    return MediaInfo(
        id="d0",
        path=device,
        medium=MediumKind.SSD,
        sanitizable=True,
        size_bytes=8 << 20,
        logical_block=512,
        rotational=False,
        transport="loop",
        model="",
        serial="",
        in_use="",
    )


def _raw(helper: Helper, data: bytes, *, shut: bool = True) -> HelperReply:
    """Send bytes as they are; → the reply's fields."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(helper.socket))
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        reply = bytearray()
        while chunk := s.recv(65536):
            reply += chunk
    return decode_reply(bytes(reply))


def test_the_daemon_probes_through_the_helper_and_device_errors_come_back(
    helper: Helper, loop: Path
) -> None:
    """A probe answers with the port's own types; a command the device refuses comes back
    as the OSError the purge runner records (a loop device has no NVMe admin commands)."""
    purger = HelperPurger(helper.socket)
    found = purger.probe(_info(loop))
    assert found.capabilities.transport == "unknown" and found.others_in_use == ""
    with pytest.raises(OSError) as info:
        purger.issue(_info(loop), PurgeMethod.NVME_FORMAT_ERASE, "", 30)
    assert info.value.errno in (errno.EINVAL, errno.ENOTTY), info.value
    assert "issue nvme-format-erase" in str(info.value)
    with pytest.raises(OSError):
        purger.progress(_info(loop), PurgeMethod.NVME_SANITIZE_BLOCK)
    # What it did is in its log (the journal, on a device); the password never is.
    assert '"op":"issue"' in helper.log.read_text()


def test_an_image_file_is_probed_without_the_helper(tmp_path: Path) -> None:
    image = _image(tmp_path, "sim.img")
    found = HelperPurger(tmp_path / "no-helper.sock").probe(_info(image))
    assert found.capabilities.transport == "file"


def test_the_helper_refuses_what_is_not_a_free_whole_disk(
    helper: Helper, loop: Path, tmp_path: Path
) -> None:
    purger = HelperPurger(helper.socket)
    for path, why in (
        (Path("/etc/passwd"), "is not a device node under /dev"),
        (Path("/dev/../etc/passwd"), "is not a device node under /dev"),
        (Path("dev/null"), "is not a device node under /dev"),
        (Path("/dev/null"), "is not a block device"),
        (Path("/dev/mfpsec-no-such-disk"), "No such file or directory"),
    ):
        with pytest.raises(OSError) as info:
            purger.issue(_info(path), PurgeMethod.NVME_FORMAT_ERASE, "", 30)
        assert info.value.errno == errno.EPERM and why in str(info.value), (path, info.value)

    # A partition: only whole disks are sanitized.
    subprocess.run(
        ["sfdisk", "--quiet", str(loop)], input="label: dos\n,4M\n", text=True, check=True
    )
    subprocess.run(["partx", "-a", str(loop)], check=False)
    part = Path(f"{loop}p1")
    for _ in range(50):
        if part.exists():
            break
        time.sleep(0.1)
    assert part.exists()
    with pytest.raises(OSError, match="a partition"):
        purger.issue(_info(part), PurgeMethod.NVME_FORMAT_ERASE, "", 30)

    # Mounted (a partition of it): the disk is in use.
    subprocess.run(["mkfs.ext4", "-q", "-F", str(part)], check=True, capture_output=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", str(part), str(mnt)], check=True)
    try:
        with pytest.raises(OSError, match=r"is mounted at .*mnt"):
            purger.issue(_info(loop), PurgeMethod.ATA_SECURITY_ERASE, "pw", 30)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_the_helper_serves_only_the_daemons_user(helper: Helper, loop: Path) -> None:
    """The socket's mode is the first guard (SocketGroup=mfpsecd, 0660); the helper checks
    the peer's uid again. Root and the daemon's user are served, nobody else."""
    ask = (
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect({sock!r}); "
        's.sendall(b\'{{"op":"probe","device":"{dev}"}}\'); s.shutdown(1); '
        "print(s.recv(65536).decode())"
    )
    for uid, served in ((DAEMON_UID, True), (STRANGER_UID, False)):
        said = _run(
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            other_uids.python(),  # the checkout's venv may be out of their reach
            "-c",
            ask.format(sock=str(helper.socket), dev=loop),
        )
        if served:
            assert '"probe":{' in said and '"refused"' not in said, said
        else:
            assert f"uid {uid} may not ask for device commands" in said, said


def test_malformed_oversized_and_stalled_requests_are_refused(helper: Helper, loop: Path) -> None:
    """Each gets a reply that says why; the helper exits (one request per process) and the
    next caller is served."""
    assert "malformed request" in _raw(helper, b"{not json").refused
    assert "malformed request" in _raw(helper, b'{"op":"format","device":"/dev/x"}').refused
    extra = b'{"op":"probe","device":"/dev/x","sudo":true}'
    assert "malformed request" in _raw(helper, extra).refused
    unknown = f'{{"op":"issue","device":"{loop}","method":"shred"}}'.encode()
    assert "unknown purge method 'shred'" in _raw(helper, unknown).refused
    assert "larger than" in _raw(helper, b"{" + b" " * (64 << 10)).refused
    started = time.monotonic()
    stalled = _raw(helper, b'{"op":"probe",', shut=False)  # never finishes its request
    assert "no complete request within 1 s" in stalled.refused
    assert time.monotonic() - started < 15
    assert HelperPurger(helper.socket).probe(_info(loop)).capabilities.transport == "unknown"


def test_no_helper_is_a_clear_device_error(tmp_path: Path, loop: Path) -> None:
    missing = tmp_path / "purge.sock"
    with pytest.raises(OSError) as info:
        HelperPurger(missing).issue(_info(loop), PurgeMethod.NVME_FORMAT_ERASE, "", 30)
    assert str(missing) in str(info.value) and info.value.errno == errno.ENOENT


def test_the_helper_alone_on_a_terminal_refuses_to_start() -> None:
    r = subprocess.run(
        [str(MFPSECD), "purge-helper"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 64 and "not a socket" in r.stderr, r


def test_what_the_request_names_is_resolved_and_checked_before_anything_runs(
    helper: Helper, loop: Path, tmp_path: Path
) -> None:
    """A link is followed to the node it names, once, and that node is what is used;
    bad fields are refused with a reply, never a silent exit."""
    link = Path(tempfile.mkdtemp(prefix="mfpsec-link-", dir="/dev/shm")) / "disk"
    try:
        link.symlink_to(loop)
        found = HelperPurger(helper.socket).probe(
            _info(Path("/dev/shm") / link.parent.name / "disk")
        )
        assert found.capabilities.transport == "unknown"
        assert f'"device":"{loop}"' in helper.log.read_text()  # the resolved node
        link.unlink()
        link.symlink_to("/etc/passwd")
        refused = _raw(helper, f'{{"op":"probe","device":"{link}"}}'.encode()).refused
        assert "is not a device node under /dev" in refused
    finally:
        shutil.rmtree(link.parent, ignore_errors=True)
    nul = _raw(helper, b'{"op":"probe","device":"/dev/loop\\u0000"}')
    assert "embedded null byte" in nul.refused, nul
    huge = f'{{"op":"issue","device":"{loop}","method":"nvme-format-erase","timeout_s":1e308}}'
    assert "malformed request" in _raw(helper, huge.encode()).refused
    no_password = f'{{"op":"issue","device":"{loop}","method":"ata-security-erase"}}'
    assert "one-time drive password" in _raw(helper, no_password.encode()).refused


def test_a_disk_someone_holds_is_refused_by_the_kernel_and_may_still_be_probed(
    helper: Helper, loop: Path
) -> None:
    """The helper holds the disk exclusively while a command runs: a disk another
    process holds that way (what a mount, swap or a RAID does) is refused even where
    the mount table says nothing; reads (probe) still answer, as the posture needs."""
    holder = os.open(loop, os.O_RDONLY | os.O_EXCL)
    try:
        purger = HelperPurger(helper.socket)
        with pytest.raises(OSError, match="is in use"):
            purger.issue(_info(loop), PurgeMethod.NVME_FORMAT_ERASE, "", 30)
        assert purger.probe(_info(loop)).capabilities.transport == "unknown"
    finally:
        os.close(holder)


def test_a_trickling_caller_is_cut_off_within_the_time_limit(helper: Helper) -> None:
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(helper.socket))
        reply = bytearray()
        with contextlib.suppress(OSError):
            for byte in b'{"op":"probe","device":"/dev/null"}':
                s.send(bytes([byte]))
                time.sleep(0.3)
                if time.monotonic() - started > 5:
                    break
            s.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                reply += chunk
    assert "no complete request within 1 s" in decode_reply(bytes(reply)).refused
    assert time.monotonic() - started < 8


def test_the_daemon_reads_whether_it_holds_cap_sys_admin(tmp_path: Path) -> None:
    """Without wipe.purge_helper (a configuration kept from before the helper), a daemon
    that cannot send NVMe admin commands itself uses the installed helper's socket."""
    status = tmp_path / "self" / "status"
    status.parent.mkdir()
    for caps, held in (("0000000000001000", False), ("0000000000201000", True), ("zz", False)):
        status.write_text(f"Name:\tmfpsecd\nCapEff:\t{caps}\n")
        assert can_administer(tmp_path) is held, caps
    assert can_administer(Path("/proc")) is True  # the suite runs as root
    assert can_administer(tmp_path / "missing") is False
