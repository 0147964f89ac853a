"""The signed posture report's sources, wired: the device as the report names it, and
the hardening facts the security levels need beyond the posture items (the firmware
check of this power-on, the rewrite lock, post-quantum roots, the keys' PCR policy).
Only the composition root sees the firmware, key and system capabilities together."""

from __future__ import annotations

from mfpsecd.base.clock import Clock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import Config
from mfpsecd.firmware.model.signature import post_quantum
from mfpsecd.firmware.service import FirmwareService
from mfpsecd.keys.chain import ChainState, KeyChain
from mfpsecd.keys.wiring import identity_signer
from mfpsecd.system.model.security_level import Hardening
from mfpsecd.system.ports import DeviceFacts
from mfpsecd.system.posture import PostureBook
from mfpsecd.system.report import PostureReporter
from mfpsecd.system.status import StatusService
from mfpsecd.wipe.wiring import device_name


def posture_reporter(
    book: PostureBook,
    status: StatusService,
    clock: Clock,
    *,
    cfg: Config,
    board: Board,
    chain: KeyChain,
    firmware: FirmwareService | None,
) -> PostureReporter:
    name = device_name(board)

    def device() -> DeviceFacts:
        booted = firmware.boot_record() if firmware is not None else None
        version = booted.version if booted is not None and booted.result == "verified" else ""
        return DeviceFacts(name.model, name.serial, name.board, version, cfg.snmp.enterprise)

    async def hardening() -> Hardening:
        if firmware is None:
            verified, detail, locked, pq = False, "this board profile has no [firmware]", False, 0
        else:
            booted = firmware.boot_record()
            verified = booted is not None and booted.result == "verified"
            if booted is None:
                detail = "this boot has no verification record"
            elif verified:
                detail = f"slot {booted.slot}, version {booted.version}"
            else:
                detail = f"this boot's check failed: {booted.reason or booted.error}"
            locked = (await firmware.lock_state())[0]
            pq = sum(1 for root in firmware.settings.roots if post_quantum(root))
        facts = await chain.facts()
        bound = facts.bound_to if facts.state is ChainState.READY else ""
        return Hardening(verified, detail, locked, pq, bound)

    return PostureReporter(
        book,
        status,
        clock,
        signer=identity_signer(chain),
        identities=chain.identities,
        hardening=hardening,
        device=device,
    )
