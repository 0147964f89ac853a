"""What names this device in the messages it sends a SIEM: model and serial number (the
board profile, as the certificates name it), the identity key's fingerprint and the
firmware version booted. Only the composition root sees all three capabilities."""

from __future__ import annotations

from collections.abc import Callable

from mfpsecd.audit.model.siem import Device
from mfpsecd.base.config.loader import Board
from mfpsecd.firmware.service import FirmwareService
from mfpsecd.keys.chain import ChainState, KeyChain
from mfpsecd.keys.chain_rows import fingerprint
from mfpsecd.wipe.wiring import device_name


def siem_device(
    board: Board, chain: KeyChain, firmware: FirmwareService | None
) -> Callable[[], Device]:
    """Read at each message: the identity changes when a backup is restored onto a new
    TPM; the firmware only with a reboot, so it is read once."""
    name = device_name(board)
    booted = firmware.boot_record() if firmware is not None else None
    version = booted.version if booted is not None else ""
    cached: tuple[bytes, str] = (b"", "")

    def device() -> Device:
        # While the chain is not ready the last identity known still names the device:
        # that is when a SIEM most needs to know which device speaks.
        nonlocal cached
        spki = chain.identity_public_der if chain.state is ChainState.READY else b""
        if spki and spki != cached[0]:
            cached = (spki, fingerprint(spki))
        return Device(name.model, name.serial, cached[1], version)

    return device
