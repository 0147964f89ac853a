"""What a storage device says it can do, from its own Identify data (SPEC W-3..W-5).

Parsers for the raw structures the kernel passes through (NVMe Identify Controller and
Namespace, 4096 bytes each, NVME_IOCTL_ADMIN_CMD; ATA IDENTIFY DEVICE, 512 bytes, SG_IO
ATA PASS-THROUGH or HDIO_GET_IDENTITY) into the few facts the purge planner needs. Field
offsets are from NVM Express Base 1.4 and ACS-3; anything short or malformed is refused
(ValueError), never guessed.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass


def _ascii(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip(" \x00")


# ---------------------------------------------------------------- NVMe


@dataclass(frozen=True)
class NvmeController:
    vid: int
    serial: str
    model: str
    firmware: str
    oacs: int  # Optional Admin Command Support
    sanicap: int  # Sanitize Capabilities
    fna: int  # Format NVM Attributes

    @property
    def format_supported(self) -> bool:
        return bool(self.oacs & 0x2)

    @property
    def security_send_receive(self) -> bool:
        return bool(self.oacs & 0x1)

    @property
    def format_crypto_erase(self) -> bool:
        """FNA bit 2: Format NVM can cryptographically erase (SES=2)."""
        return bool(self.fna & 0x4)

    @property
    def format_all_namespaces(self) -> bool:
        """FNA bit 0/1: a format (or its secure erase) covers every namespace."""
        return bool(self.fna & 0x3)

    @property
    def sanitize_crypto(self) -> bool:
        return bool(self.sanicap & 0x1)

    @property
    def sanitize_block(self) -> bool:
        return bool(self.sanicap & 0x2)

    @property
    def sanitize_overwrite(self) -> bool:
        return bool(self.sanicap & 0x4)


def parse_nvme_controller(raw: bytes) -> NvmeController:
    if len(raw) != 4096:
        raise ValueError(f"NVMe Identify Controller is 4096 bytes, got {len(raw)}")
    vid = struct.unpack_from("<H", raw, 0)[0]
    (oacs,) = struct.unpack_from("<H", raw, 256)
    (sanicap,) = struct.unpack_from("<I", raw, 328)
    return NvmeController(
        vid=vid,
        serial=_ascii(raw[4:24]),
        model=_ascii(raw[24:64]),
        firmware=_ascii(raw[64:72]),
        oacs=oacs,
        sanicap=sanicap,
        fna=raw[524],
    )


@dataclass(frozen=True)
class NvmeNamespace:
    size_blocks: int  # NSZE
    block_size: int  # the formatted LBA format's data size
    lba_format: int  # FLBAS bits 3:0 (and 6:5 above 16 formats)
    metadata_bytes: int
    extended_metadata: bool = False  # FLBAS bit 4: metadata at the end of each block
    protection: int = 0  # DPS bits 2:0: end-to-end protection type, 0 for none
    protection_first: bool = False  # DPS bit 3: protection in the first metadata bytes

    def format_cdw10(self, ses: int) -> int:
        """Format NVM's CDW10 that keeps this namespace's format (LBA format, metadata
        setting, protection type and location) and sets Secure Erase Settings."""
        return (
            (self.lba_format & 0xF)
            | int(self.extended_metadata) << 4
            | (self.protection & 0x7) << 5
            | int(self.protection_first) << 8
            | (ses & 0x7) << 9
            | ((self.lba_format >> 4) & 0x3) << 12
        )


def parse_nvme_namespace(raw: bytes) -> NvmeNamespace:
    if len(raw) != 4096:
        raise ValueError(f"NVMe Identify Namespace is 4096 bytes, got {len(raw)}")
    (nsze,) = struct.unpack_from("<Q", raw, 0)
    nlbaf, flbas, dps = raw[25], raw[26], raw[29]
    index = (flbas & 0x0F) | ((flbas >> 1) & 0x30)
    if index > nlbaf:
        raise ValueError(f"formatted LBA format {index} beyond the {nlbaf + 1} listed")
    ms, lbads, _rp = struct.unpack_from("<HBB", raw, 128 + 4 * index)
    if not 9 <= lbads <= 16:
        raise ValueError(f"LBA data size 2^{lbads}")
    return NvmeNamespace(
        size_blocks=nsze,
        block_size=1 << lbads,
        lba_format=index,
        metadata_bytes=ms,
        extended_metadata=bool(flbas & 0x10),
        protection=dps & 0x7,
        protection_first=bool(dps & 0x8),
    )


# ---------------------------------------------------------------- ATA


class SanitizeState(enum.IntEnum):
    """SSTAT bits 2:0: how the most recent sanitize operation stands."""

    NEVER = 0
    COMPLETED = 1
    IN_PROGRESS = 2
    FAILED = 3
    COMPLETED_NO_DEALLOCATE = 4


@dataclass(frozen=True)
class SanitizeStatus:
    """The Sanitize Status log page (Log Identifier 81h, 512 bytes)."""

    state: SanitizeState
    progress: float  # fraction done of the operation in progress (SPROG / 65536)
    passes: int  # overwrite passes completed
    action: int  # SANACT of the command that started it (SCDW10 bits 2:0)
    estimates_s: dict[str, float]  # "overwrite", "block", "crypto": the device's own; absent
    #                                 when it gives none (FFFFFFFFh)

    @property
    def succeeded(self) -> bool:
        return self.state in (SanitizeState.COMPLETED, SanitizeState.COMPLETED_NO_DEALLOCATE)


def parse_sanitize_status(raw: bytes) -> SanitizeStatus:
    if len(raw) < 20:
        raise ValueError(f"the Sanitize Status log page has 20 bytes or more, got {len(raw)}")
    sprog, sstat, scdw10, eto, etbe, etce = struct.unpack_from("<HHIIII", raw, 0)
    try:
        state = SanitizeState(sstat & 0x7)
    except ValueError:
        raise ValueError(f"SSTAT 0x{sstat:04x}: reserved sanitize status") from None
    estimates = {
        name: float(v)
        for name, v in (("overwrite", eto), ("block", etbe), ("crypto", etce))
        if v != 0xFFFFFFFF
    }
    # SPROG is FFFFh when no sanitize is in progress.
    progress = 1.0 if state is not SanitizeState.IN_PROGRESS else sprog / 65536
    return SanitizeStatus(state, progress, (sstat >> 3) & 0x1F, scdw10 & 0x7, estimates)


@dataclass(frozen=True)
class AtaIdentity:
    serial: str
    model: str
    firmware: str
    rotation_rate: int  # word 217: 1 = not rotating (solid state), 0 = not reported
    security_supported: bool
    security_enabled: bool  # a user password is set
    security_locked: bool
    security_frozen: bool  # SECURITY FREEZE LOCK: no erase until a power cycle
    security_count_expired: bool
    enhanced_erase_supported: bool
    erase_minutes: int  # the drive's estimate for SECURITY ERASE UNIT (0: not given)
    enhanced_erase_minutes: int
    sanitize_supported: bool
    sanitize_crypto: bool
    sanitize_overwrite: bool
    sanitize_block: bool
    trim_supported: bool
    sectors: int
    # Where sectors can hide beyond the visible end: Host Protected Area (word 82/85 bit
    # 10), Device Configuration Overlay (word 83 bit 11), Accessible Max Address
    # Configuration (ACS-3's successor of both, word 119 bit 8).
    hpa_supported: bool = False
    hpa_enabled: bool = False
    dco_supported: bool = False
    ama_supported: bool = False

    @property
    def solid_state(self) -> bool:
        return self.rotation_rate == 1


def _ata_string(words: tuple[int, ...]) -> str:
    # ATA strings are big-endian within each 16-bit word.
    return _ascii(b"".join(struct.pack(">H", w) for w in words))


def _erase_minutes(word: int) -> int:
    if word & 0x8000:  # extended format: bits 14:0 in units of 2 minutes
        return (word & 0x7FFF) * 2
    value = word & 0xFF
    return 0 if value == 0 else (508 if value == 255 else value * 2)


def parse_ata_identify(raw: bytes) -> AtaIdentity:
    if len(raw) != 512:
        raise ValueError(f"ATA IDENTIFY DEVICE is 512 bytes, got {len(raw)}")
    w = struct.unpack("<256H", raw)
    if w[0] & 0x8000:
        raise ValueError("not an ATA device (word 0 bit 15: ATAPI)")
    if (w[255] & 0xFF) == 0xA5 and sum(raw) & 0xFF:
        raise ValueError("IDENTIFY DEVICE checksum mismatch")
    security = w[128]
    supported_82 = bool(w[82] & 0x2)
    lba48 = w[100] | (w[101] << 16) | (w[102] << 32) | (w[103] << 48)
    lba28 = w[60] | (w[61] << 16)
    return AtaIdentity(
        serial=_ata_string(w[10:20]),
        firmware=_ata_string(w[23:27]),
        model=_ata_string(w[27:47]),
        rotation_rate=w[217] if w[217] != 0xFFFF else 0,
        security_supported=supported_82 and bool(security & 0x1),
        security_enabled=bool(security & 0x2),
        security_locked=bool(security & 0x4),
        security_frozen=bool(security & 0x8),
        security_count_expired=bool(security & 0x10),
        enhanced_erase_supported=bool(security & 0x20),
        erase_minutes=_erase_minutes(w[89]),
        enhanced_erase_minutes=_erase_minutes(w[90]),
        sanitize_supported=bool(w[59] & 0x1000),
        sanitize_crypto=bool(w[59] & 0x2000),
        sanitize_overwrite=bool(w[59] & 0x4000),
        sanitize_block=bool(w[59] & 0x8000),
        trim_supported=bool(w[169] & 0x1),
        sectors=lba48 or lba28,
        hpa_supported=bool(w[82] & 0x400),
        hpa_enabled=bool(w[85] & 0x400),
        dco_supported=bool(w[83] & 0x800),
        ama_supported=(w[119] & 0xC000) == 0x4000 and bool(w[119] & 0x100),
    )


_MAX_SECTORS = re.compile(r"max sectors\s*=\s*(\d+)/(\d+)")


def parse_hdparm_max_sectors(text: str) -> tuple[int, int]:
    """`hdparm -N`: (sectors the host sees, the drive's native max). ValueError when the
    drive did not answer (no READ NATIVE MAX ADDRESS)."""
    m = _MAX_SECTORS.search(text)
    if m is None:
        raise ValueError(f"no max sectors in hdparm -N: {' '.join(text.split())[:120]!r}")
    return int(m.group(1)), int(m.group(2))


# ---------------------------------------------------------------- ATA SANITIZE STATUS


@dataclass(frozen=True)
class AtaSanitizeStatus:
    state: str  # "running", "completed", "failed", "idle"
    progress: float


_PROGRESS = re.compile(r"Progress:\s*0x([0-9a-fA-F]{1,4})")


def parse_hdparm_sanitize_status(text: str) -> AtaSanitizeStatus:
    """`hdparm --sanitize-status`: state SD2 with a 16-bit progress while it runs, then
    whether the last operation completed without error."""
    if "In Process" in text:
        m = _PROGRESS.search(text)
        return AtaSanitizeStatus("running", int(m.group(1), 16) / 65536 if m else 0.0)
    if "With Error" in text or "ailed" in text:
        return AtaSanitizeStatus("failed", 1.0)
    if "Completed Without Error" in text:
        return AtaSanitizeStatus("completed", 1.0)
    return AtaSanitizeStatus("idle", 1.0)


# ---------------------------------------------------------------- eMMC EXT_CSD


@dataclass(frozen=True)
class MmcExtCsd:
    """The few EXT_CSD fields (JESD84-B51) a purge depends on."""

    revision: int  # EXT_CSD_REV [192]
    sec_feature_support: int  # SEC_FEATURE_SUPPORT [231]

    @property
    def secure_erase(self) -> bool:
        """SECURE_ER_EN: the device implements secure erase and secure trim."""
        return bool(self.sec_feature_support & 0x01)

    @property
    def secure_gc(self) -> bool:
        """SEC_GB_CL_EN: secure trim also cleans the blocks garbage collection moved."""
        return bool(self.sec_feature_support & 0x10)

    @property
    def sanitize(self) -> bool:
        """SEC_SANITIZE (eMMC 4.5 and later): the SANITIZE operation."""
        return bool(self.sec_feature_support & 0x40)


def parse_ext_csd(raw: bytes) -> MmcExtCsd:
    if len(raw) != 512:
        raise ValueError(f"EXT_CSD is 512 bytes, got {len(raw)}")
    return MmcExtCsd(revision=raw[192], sec_feature_support=raw[231])
