"""Media purge on emulated hardware (issue 10, acceptance 1, first part): a Linux guest
under QEMU (TCG) with an emulated NVMe controller, an AHCI disk, an SD card and a
virtio-scsi disk runs the project's own probe and planner against them. What the
emulated devices lack (NVMe Sanitize, crypto Format, ATA Security and SANITIZE, eMMC
secure erase) is found unsupported from their own Identify data, and the plan falls back
accordingly. Opt-in marker `qemu`; skipped with the reason where QEMU is missing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import qemu_guest

pytestmark = [pytest.mark.qemu, qemu_guest.requires_qemu]


def _devices(work: Path) -> list[str]:
    for name in ("nvme", "ahci", "sd", "scsi"):
        subprocess.run(["truncate", "-s", "8M", str(work / f"{name}.img")], check=True)
    return [
        "-drive", f"file={work / 'nvme.img'},if=none,id=n0,format=raw",
        "-device", "nvme,serial=mfpsec-nvme0,drive=n0",
        "-device", "ahci,id=ahci0",
        "-drive", f"file={work / 'ahci.img'},if=none,id=a0,format=raw",
        "-device", "ide-hd,drive=a0,bus=ahci0.0",
        "-device", "sdhci-pci",
        "-drive", f"file={work / 'sd.img'},if=none,id=s0,format=raw",
        "-device", "sd-card,drive=s0",
        "-device", "virtio-scsi-pci,id=vs0",
        "-drive", f"file={work / 'scsi.img'},if=none,id=c0,format=raw",
        "-device", "scsi-hd,drive=c0,bus=vs0.0",
    ]


def test_probe_and_plan_in_the_guest(tmp_path: Path) -> None:
    t0 = time.monotonic()
    try:
        image = qemu_guest.prepare()
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        pytest.skip(f"the guest kernel could not be fetched or built: {exc}")
    prepared = time.monotonic() - t0
    script = (f"cd {qemu_guest.ROOT} && /usr/bin/python3 tests/support/media_guest.py probe "
              "/dev/nvme0n1 /dev/sda /dev/sdb /dev/mmcblk0\n")
    run = qemu_guest.run(image, script, _devices(tmp_path), tmp_path)
    assert run.status == 0, run.output[-3000:]
    found: dict[str, Any] = {}
    for line in run.output.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            found[d["device"]] = d
    print(f"guest image {prepared:.1f} s (cached after the first), scenario {run.seconds:.1f} s")

    nvme, ahci, scsi, sd = (found[d] for d in ("/dev/nvme0n1", "/dev/sda", "/dev/sdb",
                                               "/dev/mmcblk0"))
    assert (nvme["transport"], nvme["method"], nvme["achieves"]) == (
        "nvme", "nvme-format-erase", "purge")
    skipped = dict(nvme["skipped"])
    assert skipped["nvme-sanitize-crypto"] == "SANICAP 0x00000000: no crypto erase"
    assert skipped["nvme-format-crypto"] == "FNA 0x00: no cryptographic erase"
    assert len(bytes.fromhex(nvme["raw"]["nvme-identify-controller"])) == 4096

    assert (ahci["transport"], ahci["method"]) == ("ata", "overwrite")
    assert dict(ahci["skipped"])["ata-security-erase"] == "no Security feature set"
    assert dict(ahci["skipped"])["ata-sanitize-block"] == "no SANITIZE feature set"
    assert "no purge method" in ahci["shortfall"]

    assert (scsi["transport"], scsi["method"]) == ("scsi", "overwrite")
    assert (sd["transport"], sd["method"]) == ("sd", "overwrite")
    assert "remapped blocks" in sd["shortfall"]
