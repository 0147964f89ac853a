"""A small Linux guest under QEMU (TCG) with emulated storage, for the media-purge suite.

The guest is Debian's own kernel (downloaded once with apt, the bzImage's xz payload
unpacked so QEMU boots the ELF through PVH: about half the boot time) and an initramfs
of busybox plus the storage and 9p modules. The host's root is shared read-only over 9p;
the guest chroots into it and runs the host's Python, tools and this checkout, so what
runs against the emulated devices is the project's own code. The command comes in
through fw_cfg; its output goes to the second serial port, a file on the host.

Built under build/qemu-guest (git-ignored), rebuilt when the kernel package changes.
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "qemu-guest"
MODULES = (
    "virtio",
    "virtio_ring",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "9pnet",
    "9pnet_virtio",
    "netfs",
    "fscache",
    "9p",
    "qemu_fw_cfg",
    "nvme-core",
    "nvme",
    "scsi_mod",
    "scsi_common",
    "sd_mod",
    "sg",
    "t10-pi",
    "crc64-rocksoft",
    "crc64",
    "crc-t10dif",
    "crct10dif_common",
    "crct10dif_generic",
    "libata",
    "libahci",
    "ahci",
    "mmc_core",
    "mmc_block",
    "sdhci",
    "sdhci-pci",
    "cqhci",
    "virtio_scsi",
    "virtio_blk",
)

_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modules.list); do modprobe -q "$m" 2>/dev/null; done
mdev -s 2>/dev/null
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /host
for d in dev proc sys; do mount --bind /$d /host/$d; done
# Scratch space on /run only: the checkout may itself live under the host's /tmp.
mount -t tmpfs tmpfs /host/run
i=0; while [ ! -e /host/dev/ttyS1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
cp /sys/firmware/qemu_fw_cfg/by_name/opt/cmd/raw /host/run/cmd.sh
chroot /host /usr/bin/env TMPDIR=/run PYTHONDONTWRITEBYTECODE=1 /bin/sh /run/cmd.sh \
    > /host/dev/ttyS1 2>&1
echo "guest-exit $?" > /host/dev/ttyS1
sync; poweroff -f
"""


def available() -> str:
    """Why the suite cannot run here ("" when it can)."""
    for tool in ("qemu-system-x86_64", "busybox", "cpio", "depmod", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None and not Path(f"/bin/{tool}").exists():
            return f"{tool} is not installed (make setup installs the QEMU suite's tools)"
    return ""


requires_qemu = pytest.mark.skipif(bool(available()), reason=available() or "ok")


def _kernel_package() -> str:
    out = subprocess.run(
        ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["Depends:"] and parts[1].startswith("linux-image-"):
            return parts[1]
    raise RuntimeError("no linux-image package behind linux-image-amd64")


def _unpack_kernel(bzimage: bytes) -> bytes:
    """The ELF inside a bzImage (xz payload)."""
    start = bzimage.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise RuntimeError("no xz payload in the kernel image")
    return lzma.LZMADecompressor().decompress(bzimage[start:])


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path


def prepare() -> GuestImage:
    # The image is rebuilt when the kernel package or what goes into the initramfs changes.
    package = _kernel_package()
    recipe = hashlib.sha256((_INIT + " ".join(MODULES)).encode()).hexdigest()[:16]
    pkg = f"{package} {recipe}"
    stamp = CACHE / "package"
    kernel, initrd = CACHE / "vmlinux", CACHE / "initrd.cpio"
    if stamp.exists() and stamp.read_text() == pkg and kernel.exists() and initrd.exists():
        return GuestImage(kernel, initrd)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp_:
        tmp = Path(tmp_)
        subprocess.run(
            ["apt-get", "download", "-qq", package], cwd=tmp, check=True, capture_output=True
        )
        deb = next(tmp.glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "pkg")], check=True)
        version = package.removeprefix("linux-image-")
        kernel.write_bytes(_unpack_kernel((tmp / "pkg/boot" / f"vmlinuz-{version}").read_bytes()))
        rd = tmp / "rd"
        for d in ("bin", "proc", "sys", "dev", "tmp"):
            (rd / d).mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", rd / "bin/busybox")
        src = tmp / "pkg/lib/modules" / version
        dst = rd / "lib/modules" / version
        wanted = {m.replace("-", "_") for m in MODULES}
        for ko in src.rglob("*.ko"):
            if ko.stem.replace("-", "_") in wanted:
                target = dst / ko.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ko, target)
        for meta in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            if (src / meta).exists():
                shutil.copy(src / meta, dst / meta)
        subprocess.run(["depmod", "-b", str(rd), version], check=True)
        (rd / "modules.list").write_text("\n".join(MODULES) + "\n")
        init = rd / "init"
        init.write_text(_INIT)
        init.chmod(0o755)
        files = subprocess.run(["find", "."], cwd=rd, capture_output=True, check=True).stdout
        with initrd.open("wb") as out:
            subprocess.run(
                ["cpio", "-o", "-H", "newc", "--quiet"], cwd=rd, input=files, stdout=out, check=True
            )
    stamp.write_text(pkg)
    return GuestImage(kernel, initrd)


@dataclass(frozen=True)
class Run:
    output: str
    status: int  # the command's exit status in the guest (-1: the guest never said)
    seconds: float


def run(
    image: GuestImage, script: str, devices: list[str], work: Path, timeout: float = 180.0
) -> Run:
    """Boot, run script (sh, in the host root) with the devices attached, power off."""
    work.mkdir(parents=True, exist_ok=True)
    cmd, out, console = work / "cmd.sh", work / "out.log", work / "console.log"
    cmd.write_text(script)
    out.write_text("")
    argv = [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-m",
        "1024",
        "-smp",
        "1",
        "-nographic",
        "-no-reboot",
        "-nodefaults",
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initrd),
        "-append",
        "console=ttyS0 quiet panic=-1 rdinit=/init",
        "-serial",
        f"file:{console}",
        "-serial",
        f"file:{out}",
        "-fw_cfg",
        f"name=opt/cmd,file={cmd}",
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        *devices,
    ]
    t0 = time.monotonic()
    subprocess.run(
        argv,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    text = out.read_text(errors="replace")
    status = -1
    for line in text.splitlines():
        if line.startswith("guest-exit "):
            status = int(line.split()[1])
    return Run(text, status, time.monotonic() - t0)
