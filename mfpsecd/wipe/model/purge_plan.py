"""Choosing how to purge a medium (SPEC W-3..W-5; NIST SP 800-88 Rev. 2, IEEE 2883-2022).

The planner takes what the device itself reported (its Identify data, its transport and
whether it rotates) and picks the strongest method the medium supports, in the order the
seed paper and SP 800-88 give for flash and disks:

  NVMe Sanitize (crypto erase, block erase, overwrite) → NVMe Format NVM with Secure
  Erase (SES=2 crypto, SES=1 user data) → ATA SANITIZE (crypto scramble, block erase,
  overwrite) → ATA SECURITY ERASE UNIT (enhanced, then normal) → eMMC secure erase →
  overwrite by the engine (one 0x00 pass on flash, the selected mode on an HDD).

Every stronger method that was not possible is kept with the reason, for the
certificate. Each method says what a read-back must find afterwards: a device that
reports success and leaves data is a failed purge, whatever its status said.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mfpsecd.wipe.model.media_identify import AtaIdentity, NvmeController, SanitizeStatus


class PurgeLevel(enum.IntEnum):
    CLEAR = 1  # defeats reading through the interface
    PURGE = 2  # defeats laboratory recovery


class PurgeMethod(enum.Enum):
    NVME_SANITIZE_CRYPTO = "nvme-sanitize-crypto"
    NVME_SANITIZE_BLOCK = "nvme-sanitize-block"
    NVME_SANITIZE_OVERWRITE = "nvme-sanitize-overwrite"
    NVME_FORMAT_CRYPTO = "nvme-format-crypto"  # Format NVM, SES=2
    NVME_FORMAT_ERASE = "nvme-format-erase"  # Format NVM, SES=1
    ATA_SANITIZE_CRYPTO = "ata-sanitize-crypto"
    ATA_SANITIZE_BLOCK = "ata-sanitize-block"
    ATA_SANITIZE_OVERWRITE = "ata-sanitize-overwrite"
    ATA_SECURITY_ERASE_ENHANCED = "ata-security-erase-enhanced"
    ATA_SECURITY_ERASE = "ata-security-erase"
    MMC_SECURE_ERASE = "mmc-secure-erase"
    OVERWRITE = "overwrite"  # the project's overwrite engine
    # Only when the service engineer names it: not a sanitization method (SP 800-88 does
    # not count it; QEMU's reports success and leaves the data), verified like any other.
    SCSI_FORMAT_UNIT = "scsi-format-unit"

    @property
    def background(self) -> bool:
        """A sanitize runs in the device after the command completes: it is followed with
        the device's status (and a power cut does not stop it)."""
        return self.value.startswith(("nvme-sanitize", "ata-sanitize"))


class Expect(enum.Enum):
    """What the read-back after the method must find."""

    ZEROS = "zeros"
    ERASED = "erased"  # every sampled block uniformly 0x00 or uniformly 0xFF
    CHANGED = "changed"  # no sampled block still holds what it held before (crypto erase)
    ENGINE = "engine"  # the overwrite engine verifies its own passes


@dataclass(frozen=True)
class Capabilities:
    """What discovery found: the transport, rotation, and the device's own Identify."""

    transport: str  # nvme, ata, scsi, mmc, sd, usb, virtio, file, unknown
    rotational: bool | None
    nvme: NvmeController | None = None
    ata: AtaIdentity | None = None
    mmc_secure_erase: bool = False  # eMMC EXT_CSD SEC_FEATURE_SUPPORT: secure erase
    nvme_sanitize: SanitizeStatus | None = None  # the Sanitize Status log, for its estimates
    # ATA: (visible, native max) sectors from READ NATIVE MAX ADDRESS; None: not known
    max_sectors: tuple[int, int] | None = None

    @property
    def hidden_sectors(self) -> int:
        """Sectors beyond the visible end (a Host Protected Area or DCO): no overwrite
        through the block device reaches them."""
        if self.max_sectors is None:
            return 0
        visible, native = self.max_sectors
        return max(native - visible, 0)

    @property
    def flash(self) -> bool:
        if self.transport in ("nvme", "mmc", "sd"):
            return True
        if self.ata is not None and self.ata.rotation_rate:
            return self.ata.solid_state
        return self.rotational is False


@dataclass(frozen=True)
class Plan:
    requested: PurgeLevel
    method: PurgeMethod
    achieves: PurgeLevel
    expect: Expect
    whole_device: bool  # it erases more than the namespace (every namespace, the controller)
    estimate_s: float  # the device's own estimate, 0 when it gave none
    skipped: tuple[tuple[PurgeMethod, str], ...] = field(default=())
    shortfall: str = ""  # why the requested level is not reached, else ""

    @property
    def needs_confirmation(self) -> bool:
        """Erasing more than the target, or without reaching the level asked for, is done
        only with the service engineer's explicit confirmation (the seed's warning)."""
        return self.whole_device or bool(self.shortfall)


def _nvme(c: Capabilities) -> list[tuple[PurgeMethod, PurgeLevel, Expect, bool, float, str]]:
    """(method, level, expect, whole device, estimate, why not: "" when possible)."""
    n = c.nvme
    if c.transport != "nvme" or n is None:
        why = "not an NVMe device" if c.transport != "nvme" else "no Identify Controller data"
        return [
            (m, PurgeLevel.PURGE, Expect.CHANGED, True, 0.0, why)
            for m in (
                PurgeMethod.NVME_SANITIZE_CRYPTO,
                PurgeMethod.NVME_SANITIZE_BLOCK,
                PurgeMethod.NVME_SANITIZE_OVERWRITE,
                PurgeMethod.NVME_FORMAT_CRYPTO,
                PurgeMethod.NVME_FORMAT_ERASE,
            )
        ]
    sanicap = f"SANICAP 0x{n.sanicap:08x}"
    estimates = c.nvme_sanitize.estimates_s if c.nvme_sanitize is not None else {}
    no_format = f"OACS 0x{n.oacs:04x}: no Format NVM"
    return [
        (
            PurgeMethod.NVME_SANITIZE_CRYPTO,
            PurgeLevel.PURGE,
            Expect.CHANGED,
            True,
            estimates.get("crypto", 0.0),
            "" if n.sanitize_crypto else f"{sanicap}: no crypto erase",
        ),
        (
            PurgeMethod.NVME_SANITIZE_BLOCK,
            PurgeLevel.PURGE,
            Expect.ERASED,
            True,
            estimates.get("block", 0.0),
            "" if n.sanitize_block else f"{sanicap}: no block erase",
        ),
        (
            PurgeMethod.NVME_SANITIZE_OVERWRITE,
            PurgeLevel.PURGE,
            Expect.ZEROS,
            True,
            estimates.get("overwrite", 0.0),
            "" if n.sanitize_overwrite else f"{sanicap}: no overwrite",
        ),
        (
            PurgeMethod.NVME_FORMAT_CRYPTO,
            PurgeLevel.PURGE,
            Expect.CHANGED,
            n.format_all_namespaces,
            0.0,
            no_format
            if not n.format_supported
            else ("" if n.format_crypto_erase else f"FNA 0x{n.fna:02x}: no cryptographic erase"),
        ),
        (
            PurgeMethod.NVME_FORMAT_ERASE,
            PurgeLevel.PURGE,
            Expect.ERASED,
            n.format_all_namespaces,
            0.0,
            "" if n.format_supported else no_format,
        ),
    ]


def _ata(c: Capabilities) -> list[tuple[PurgeMethod, PurgeLevel, Expect, bool, float, str]]:
    a = c.ata
    methods = (
        PurgeMethod.ATA_SANITIZE_CRYPTO,
        PurgeMethod.ATA_SANITIZE_BLOCK,
        PurgeMethod.ATA_SANITIZE_OVERWRITE,
        PurgeMethod.ATA_SECURITY_ERASE_ENHANCED,
        PurgeMethod.ATA_SECURITY_ERASE,
    )
    if c.transport != "ata" or a is None:
        why = "not an ATA device" if c.transport != "ata" else "no IDENTIFY DEVICE data"
        return [(m, PurgeLevel.PURGE, Expect.CHANGED, False, 0.0, why) for m in methods]
    no_sanitize = "" if a.sanitize_supported else "no SANITIZE feature set"

    def security(enhanced: bool) -> str:
        if not a.security_supported:
            return "no Security feature set"
        if a.security_frozen:
            return "security frozen by the host firmware (needs a power cycle)"
        if a.security_locked or a.security_enabled:
            return "a drive password is already set (not ours): the drive is locked to us"
        if a.security_count_expired:
            return "password attempt count expired"
        if enhanced and not a.enhanced_erase_supported:
            return "no enhanced security erase"
        return ""

    normal_level = PurgeLevel.CLEAR if c.flash else PurgeLevel.PURGE
    return [
        (
            PurgeMethod.ATA_SANITIZE_CRYPTO,
            PurgeLevel.PURGE,
            Expect.CHANGED,
            False,
            0.0,
            no_sanitize or ("" if a.sanitize_crypto else "no CRYPTO SCRAMBLE"),
        ),
        (
            PurgeMethod.ATA_SANITIZE_BLOCK,
            PurgeLevel.PURGE,
            Expect.ERASED,
            False,
            0.0,
            no_sanitize or ("" if a.sanitize_block else "no BLOCK ERASE"),
        ),
        (
            PurgeMethod.ATA_SANITIZE_OVERWRITE,
            PurgeLevel.PURGE,
            Expect.ZEROS,
            False,
            0.0,
            no_sanitize or ("" if a.sanitize_overwrite else "no OVERWRITE"),
        ),
        (
            PurgeMethod.ATA_SECURITY_ERASE_ENHANCED,
            PurgeLevel.PURGE,
            Expect.CHANGED,
            False,
            a.enhanced_erase_minutes * 60.0,
            security(True),
        ),
        (
            PurgeMethod.ATA_SECURITY_ERASE,
            normal_level,
            Expect.ZEROS,
            False,
            a.erase_minutes * 60.0,
            security(False),
        ),
    ]


def _candidates(
    caps: Capabilities,
) -> list[tuple[PurgeMethod, PurgeLevel, Expect, bool, float, str]]:
    return [
        *_nvme(caps),
        *_ata(caps),
        (
            PurgeMethod.MMC_SECURE_ERASE,
            PurgeLevel.PURGE,
            Expect.ERASED,
            False,
            0.0,
            ""
            if caps.mmc_secure_erase
            else ("not an eMMC device" if caps.transport != "mmc" else "EXT_CSD: no secure erase"),
        ),
    ]


NAMED = "named by the service engineer instead of the planner's choice"


def named(caps: Capabilities, level: PurgeLevel, method: PurgeMethod) -> Plan:
    """A method the service engineer names: to re-run one, or to try one the device does
    not advertise. Its plan says why the planner would not have chosen it, so it always
    needs confirmation; the read-back judges it like any other."""
    if method is PurgeMethod.OVERWRITE:
        # What an overwrite falls short of, said as it is said when nothing else exists.
        short = _and(plan(Capabilities("unknown", caps.rotational), level).shortfall, _hidden(caps))
        return Plan(
            level,
            method,
            PurgeLevel.CLEAR,
            Expect.ENGINE,
            False,
            0.0,
            (),
            f"{NAMED}: {short}" if short else NAMED,
        )
    if method is PurgeMethod.SCSI_FORMAT_UNIT:
        return Plan(
            level,
            method,
            PurgeLevel.CLEAR,
            Expect.ZEROS,
            False,
            0.0,
            (),
            f"{NAMED}: FORMAT UNIT is not a sanitization method in SP 800-88",
        )
    for m, achieves, expect, whole, estimate, why in _candidates(caps):
        if m is method:
            shortfall = (
                f"{NAMED}, although {why}"
                if why
                else f"{NAMED}: reaches {achieves.name.lower()} only"
                if achieves < level
                else NAMED
            )
            return Plan(level, method, achieves, expect, whole, estimate, (), shortfall)
    raise ValueError(f"unknown method {method.value}")


def plan(caps: Capabilities, level: PurgeLevel) -> Plan:
    """The strongest possible method; the engine's overwrite when nothing else is."""
    skipped: list[tuple[PurgeMethod, str]] = []
    for method, achieves, expect, whole, estimate, why in _candidates(caps):
        if why:
            skipped.append((method, why))
            continue
        if achieves < level:
            skipped.append((method, f"reaches {achieves.name.lower()} only"))
            continue
        return Plan(level, method, achieves, expect, whole, estimate, tuple(skipped))
    shortfall = (
        ""
        if level is PurgeLevel.CLEAR
        else "no purge method is available on this medium: overwritten instead "
        "(clear)"
        + (" - flash keeps remapped blocks an overwrite cannot reach" if caps.flash else "")
    )
    return Plan(
        level,
        PurgeMethod.OVERWRITE,
        PurgeLevel.CLEAR,
        Expect.ENGINE,
        False,
        0.0,
        tuple(skipped),
        _and(shortfall, _hidden(caps)),
    )


def _hidden(caps: Capabilities) -> str:
    n = caps.hidden_sectors
    return (
        f"{n} sectors beyond the visible end (a Host Protected Area or DCO) are not "
        "reached by an overwrite"
        if n
        else ""
    )


def _and(first: str, second: str) -> str:
    return "; ".join(x for x in (first, second) if x)
