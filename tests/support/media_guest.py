"""Runs inside the QEMU guest (see qemu_guest): the project's own code against the
emulated devices, one JSON line per result.

    python tests/support/media_guest.py probe /dev/nvme0n1 /dev/sda ...
        the probe and the planner, with the raw Identify data in hex
    python tests/support/media_guest.py service [--helper SOCKET] ID:NODE:MEDIUM[:METHOD] ...
        the wipe service (state database, audit log, the real purge backend and overwrite
        engine) purging each disk in turn: the planner's method, or one a service engineer
        names; each job's end state and its signed certificate. --helper: the device
        commands through the purge helper on SOCKET, as the installed daemon does
    python tests/support/media_guest.py mfpsecd ARGS...
        the `mfpsecd` command (the purge helper: `mfpsecd purge-helper`)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path

# The guest runs the checkout from a read-only share: no editable-install loader (it
# would try to rebuild the extension); the built extension is found beside it instead.
ROOT = Path(__file__).resolve().parents[2]
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "MesonpyMetaFinder"]
sys.path.insert(0, str(ROOT))
import mfpsecd  # noqa: E402

mfpsecd.__path__.append(str(ROOT / "build" / "py"))

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402

from mfpsecd.audit.backends.audit_file import AuditFile  # noqa: E402
from mfpsecd.audit.log_format import Subject  # noqa: E402
from mfpsecd.audit.service import Auditor  # noqa: E402
from mfpsecd.base.clock import SystemClock  # noqa: E402
from mfpsecd.base.config.schema import DiskSection, MediumKind  # noqa: E402
from mfpsecd.base.errors import MfpsecError  # noqa: E402
from mfpsecd.base.health import HealthRegistry  # noqa: E402
from mfpsecd.base.paths import Paths  # noqa: E402
from mfpsecd.base.sqlite_state import SqliteState  # noqa: E402
from mfpsecd.keys.model import identity_history  # noqa: E402
from mfpsecd.wipe.backends.disks import SysfsDiskInventory  # noqa: E402
from mfpsecd.wipe.backends.helper_purger import HelperPurger  # noqa: E402
from mfpsecd.wipe.backends.media_probe import probe  # noqa: E402
from mfpsecd.wipe.backends.media_purge import DevicePurger  # noqa: E402
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter  # noqa: E402
from mfpsecd.wipe.certificates import DeviceName  # noqa: E402
from mfpsecd.wipe.model import certificate as cert  # noqa: E402
from mfpsecd.wipe.model.purge_plan import PurgeLevel, PurgeMethod, plan  # noqa: E402
from mfpsecd.wipe.service import WipeService, WipeSettings  # noqa: E402

ENGINEER = Subject(origin="cli", user="ce1", role="service")


def probe_all(devices: list[str]) -> None:
    for dev in devices:
        p = probe(Path(dev))
        chosen = plan(p.capabilities, PurgeLevel.PURGE)
        print(
            json.dumps(
                {
                    "device": dev,
                    "transport": p.capabilities.transport,
                    "rotational": p.capabilities.rotational,
                    "problems": list(p.problems),
                    "raw": {k: v.hex() for k, v in p.raw.items()},
                    "method": chosen.method.value,
                    "achieves": chosen.achieves.name.lower(),
                    "expect": chosen.expect.value,
                    "shortfall": chosen.shortfall,
                    "skipped": [[m.value, why] for m, why in chosen.skipped],
                }
            ),
            flush=True,
        )


async def service(specs: list[str]) -> None:
    helper = None
    if specs[:1] == ["--helper"]:
        helper, specs = Path(specs[1]), specs[2:]
    work = Path(tempfile.mkdtemp(prefix="mfpsec-", dir="/run"))
    clock = SystemClock()
    state = SqliteState(work / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(work / "audit"), clock, HealthRegistry(clock), state)
    await auditor.start()
    disks: list[DiskSection] = []
    named: dict[str, PurgeMethod | None] = {}
    for spec in specs:
        disk, node, medium, *name = spec.split(":")
        disks.append(DiskSection(id=disk, path=node, medium=MediumKind(medium), sanitizable=True))
        named[disk] = PurgeMethod(name[0]) if name else None
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    async def sign(digest: bytes) -> tuple[bytes, bytes]:
        return key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))), spki

    async def identities() -> list[identity_history.KnownIdentity]:
        return identity_history.trusted(spki, [])

    paths = Paths(state_dir=work, run_dir=work, dev_root=Path("/dev"), sys_root=Path("/sys"))
    wipe = WipeService(
        state,
        SysfsDiskInventory(disks, paths, simulated=False),
        NativeOverwriter(),
        auditor,
        clock,
        signer=sign,
        identities=identities,
        device=DeviceName("qemu guest", "QEMU-1", "qemu"),
        tool="mfpsecd (guest)",
        settings=WipeSettings(poll_s=0.05, verify_fraction=0.05),
        purger=DevicePurger() if helper is None else HelperPurger(helper),
    )
    await wipe.start()
    for disk, method in named.items():
        started = clock.monotonic()
        try:
            first = await wipe.begin_purge(
                disk, PurgeLevel.PURGE, ENGINEER, confirm=True, method=method
            )
        except MfpsecError as exc:
            print(json.dumps({"target": disk, "refused": exc.code.wire_name}), flush=True)
            continue
        view = first
        async for view in wipe.watch(first.id):  # noqa: B007 (the last one is kept)
            pass
        document = ""
        with contextlib.suppress(MfpsecError):  # a stopped or cancelled job has none
            document = cert.encode_document(await wipe.certificate(view.id)).decode()
        print(
            json.dumps(
                {
                    "target": disk,
                    "state": view.state,
                    "error": view.error,
                    "method": view.method,
                    "steps": view.steps,
                    "seconds": round(clock.monotonic() - started, 2),
                    "certificate": document,
                }
            ),
            flush=True,
        )
    await wipe.stop()
    await auditor.stop()
    await state.close()


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "probe":
        probe_all(args)
    elif command == "service":
        asyncio.run(service(args))
    elif command == "mfpsecd":
        from mfpsecd.daemon.main import cli

        cli(args, prog_name="mfpsecd")
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
