"""The emulated media-purge suite's cost (issue 10, acceptance 4), and what the service's
plan, read-back and certificate add to a device's own purge command.

Each measurement boots the QEMU guest of tests/support/qemu_guest.py (TCG) with the
suite's four emulated devices:
  probe scenario   the project's probe and planner on every device (the first test)
  purge scenario   the wipe service purging five targets in turn (the second test)
and, in one further boot per round, on the NVMe namespace refilled with old data before
each:
  service          the wipe service's whole purge job: probe, plan, sampling, Format NVM
                   (SES=1), the read-back of 5% of the blocks, the signed certificate
  nvme format      nvme-cli's `nvme format --ses=1 --force`, nothing checked (the peer)
The two run back to back in the same guest, alternating, several times.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from bench import (
    Finding,
    Metric,
    Metrics,
    ScenarioResult,
    Settings,
    SuiteResult,
    progress,
)
from tests.support import qemu_guest
from tests.wipe.test_media_qemu import _devices

METRICS = [Metric("ms", "ms", ",.0f")]
BUDGET_S = 120.0
PYTHON = f"{qemu_guest.ROOT}/.venv/bin/python"
GUEST = f"{qemu_guest.ROOT}/tests/support/media_guest.py"


def _boot(image: qemu_guest.GuestImage, script: str) -> qemu_guest.Run:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        run = qemu_guest.run(image, script, _devices(Path(tmp)), Path(tmp))
    if run.status != 0:
        raise RuntimeError(f"the guest failed: {run.output[-2000:]}")
    return run


def _paired_script(pairs: int) -> str:
    """Refill the namespace, time nvme-cli's format; refill, time the service's purge."""
    refill = "dd if=/dev/urandom of=/dev/nvme0n1 bs=1M count=8 oflag=direct 2>/dev/null"
    pair = [
        refill,
        "t0=$(date +%s.%N)",
        "nvme format /dev/nvme0n1 --ses=1 --force >/dev/null",
        "t1=$(date +%s.%N)",
        'echo "{\\"peer_start\\": $t0, \\"peer_end\\": $t1}"',
        refill,
        f"{PYTHON} {GUEST} service nvme0:nvme0n1:nvme",
    ]
    return "\n".join(["set -e", *pair * pairs]) + "\n"


def run(settings: Settings) -> SuiteResult:
    why = qemu_guest.available()
    if why:
        raise RuntimeError(why)
    image = qemu_guest.prepare()
    rounds = 1 if settings.quick else min(settings.rounds, 3)
    probe_script = (
        f"cd {qemu_guest.ROOT} && {PYTHON} {GUEST} probe /dev/nvme0n1 /dev/sda "
        "/dev/sdb /dev/mmcblk0\n"
    )
    purge_script = (
        f"{PYTHON} {GUEST} service nvme0:nvme0n1:nvme "
        "sata0:sda:ssd:ata-security-erase scsi0:sdb:ssd:scsi-format-unit "
        "sd1:mmcblk0:sd:mmc-secure-erase sd0:mmcblk0:sd\n"
    )
    totals: dict[str, list[Metrics]] = {"probe": [], "purge": []}
    service: list[Metrics] = []
    peer: list[Metrics] = []
    orders: list[list[str]] = []
    for r in range(rounds):
        progress(f"media round {r + 1}/{rounds}")
        totals["probe"].append({"ms": 1000 * _boot(image, probe_script).seconds})
        totals["purge"].append({"ms": 1000 * _boot(image, purge_script).seconds})
        paired = _boot(image, _paired_script(3 if not settings.quick else 1))
        for line in paired.output.splitlines():
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            if "peer_start" in d:
                peer.append({"ms": 1000 * (float(d["peer_end"]) - float(d["peer_start"]))})
            elif d.get("state") == "completed":
                service.append({"ms": 1000 * float(d["seconds"])})
            else:
                raise RuntimeError(f"the service's purge did not complete: {d}")
        orders.append(["probe", "purge", "pairs"])

    suite = ScenarioResult(
        "suite",
        "the emulated suite's scenarios (one guest boot each)",
        {
            "probe": "probe scenario (4 devices)",
            "purge": "purge scenario (5 purges through the service)",
        },
        totals,
        orders,
    )
    pair = ScenarioResult(
        "nvme",
        "NVMe purge of an 8 MiB namespace, in the guest",
        {
            "service": "wipe service purge job (plan, format, read-back, certificate)",
            "peer": "nvme format --ses=1 (nvme-cli, unchecked)",
        },
        {"service": service, "peer": peer},
        orders,
    )
    total = (suite.median("probe", "ms") + suite.median("purge", "ms")) / 1000
    ratio = pair.median("peer", "ms") / pair.median("service", "ms")
    return SuiteResult(
        suite="media",
        title="emulated media purge (QEMU TCG guest)",
        settings=settings,
        metrics=METRICS,
        scenarios=[suite, pair],
        findings=[
            Finding(
                "emulated suite, both scenarios (medians)",
                total,
                "s",
                f"< {BUDGET_S:.0f} s",
                total < BUDGET_S,
            ),
            Finding("nvme-cli format time / service purge job time", ratio, "x"),
        ],
        notes=[
            "Each scenario's time is the whole guest boot: QEMU start, kernel, modules, "
            "the 9p root, Python's start and imports in the guest, the work, power-off.",
            "The service's purge job includes its reads of 5% of the blocks before "
            "(crypto erase only) and after the command, and the signature.",
            f"Rounds: {rounds} (one boot per scenario per round; the header's measurement "
            f"length does not apply); the NVMe pair ran {len(service)} times each.",
        ],
        facts={"qemu": _qemu_version(), "guest kernel": image.kernel.name},
    )


def _qemu_version() -> str:
    out = subprocess.run(
        ["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=False
    ).stdout
    return out.splitlines()[0] if out else "unknown"
