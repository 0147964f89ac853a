"""Identify parsers on spec-laid-out data, and the purge planner over every combination
of what a medium can report: the chosen method is always one the device has, every
stronger one is listed with why it was not used, and a purge request that cannot be met
says so instead of pretending."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest

from mfpsecd.wipe.model.media_identify import (
    AtaSanitizeStatus,
    SanitizeState,
    parse_ata_identify,
    parse_ext_csd,
    parse_hdparm_max_sectors,
    parse_hdparm_sanitize_status,
    parse_nvme_controller,
    parse_nvme_namespace,
    parse_sanitize_status,
)
from mfpsecd.wipe.model.purge_plan import (
    NAMED,
    Capabilities,
    Expect,
    PurgeLevel,
    PurgeMethod,
    named,
    plan,
)

ORDER: list[PurgeMethod] = [
    m for m in PurgeMethod if m is not PurgeMethod.SCSI_FORMAT_UNIT
]  # operator only


def nvme_ctrl(
    *, oacs: int = 0x10A, sanicap: int = 0, fna: int = 0, model: str = "QEMU NVMe Ctrl"
) -> bytes:
    raw = bytearray(4096)
    struct.pack_into("<H", raw, 0, 0x1B36)
    raw[4:24] = b"mfpsec-nvme0".ljust(20)
    raw[24:64] = model.encode().ljust(40)
    raw[64:72] = b"7.2.0".ljust(8)
    struct.pack_into("<H", raw, 256, oacs)
    struct.pack_into("<I", raw, 328, sanicap)
    raw[524] = fna
    return bytes(raw)


def nvme_ns(
    *, blocks: int = 1 << 15, lbads: int = 12, formats: int = 2, flbas: int = 1, dps: int = 0
) -> bytes:
    raw = bytearray(4096)
    struct.pack_into("<Q", raw, 0, blocks)
    raw[25], raw[26], raw[29] = formats - 1, flbas, dps
    struct.pack_into("<HBB", raw, 128, 0, 9, 0)
    struct.pack_into("<HBB", raw, 132, 8, lbads, 0)
    return bytes(raw)


def _words(text: str, n: int) -> list[int]:
    data = text.encode().ljust(2 * n)
    return [struct.unpack(">H", data[i : i + 2])[0] for i in range(0, 2 * n, 2)]


def ata_identify(
    *,
    security: int = 0,
    w82: int = 0,
    w59: int = 0,
    rotation: int = 7200,
    erase: int = 0,
    enhanced: int = 0,
    trim: bool = False,
    sectors: int = 1 << 20,
    checksum: bool = True,
    w83: int = 0,
    w85: int = 0,
    w119: int = 0,
) -> bytes:
    w = [0] * 256
    w[10:20] = _words("QM00001", 10)
    w[23:27] = _words("2.5+", 4)
    w[27:47] = _words("QEMU HARDDISK", 20)
    w[59], w[82], w[128] = w59, w82, security
    w[83], w[85], w[119] = w83, w85, w119
    w[89], w[90] = erase, enhanced
    w[169] = int(trim)
    w[217] = rotation
    w[100], w[101] = sectors & 0xFFFF, sectors >> 16
    raw = bytearray(struct.pack("<256H", *w))
    if checksum:
        raw[510] = 0xA5
        raw[511] = (-sum(raw[:511])) & 0xFF
    return bytes(raw)


def test_nvme_identify_fields() -> None:
    c = parse_nvme_controller(nvme_ctrl(oacs=0x10B, sanicap=0x3, fna=0x4))
    assert (c.vid, c.model, c.serial, c.firmware) == (
        0x1B36,
        "QEMU NVMe Ctrl",
        "mfpsec-nvme0",
        "7.2.0",
    )
    assert c.format_supported and c.security_send_receive and c.format_crypto_erase
    assert c.sanitize_crypto and c.sanitize_block and not c.sanitize_overwrite
    ns = parse_nvme_namespace(nvme_ns())
    assert (ns.size_blocks, ns.block_size, ns.lba_format, ns.metadata_bytes) == (
        1 << 15,
        4096,
        1,
        8,
    )
    for bad in (b"", nvme_ctrl()[:4095]):
        with pytest.raises(ValueError, match="4096 bytes"):
            parse_nvme_controller(bad)
    with pytest.raises(ValueError, match="beyond"):
        parse_nvme_namespace(nvme_ns(formats=1, flbas=1))


def test_a_format_keeps_the_namespace_format_and_sets_only_the_erase() -> None:
    """Format NVM CDW10: LBAF 3:0, MSET 4, PI 7:5, PIL 8, SES 11:9, LBAF upper 13:12. A
    purge must not drop a namespace's metadata or protection information setting."""
    plain = parse_nvme_namespace(nvme_ns())
    assert plain.format_cdw10(1) == 0x1 | 1 << 9
    protected = parse_nvme_namespace(nvme_ns(flbas=0x11, dps=0x8 | 2))
    assert (
        protected.lba_format,
        protected.extended_metadata,
        protected.protection,
        protected.protection_first,
    ) == (1, True, 2, True)
    assert protected.format_cdw10(2) == 0x1 | 1 << 4 | 2 << 5 | 1 << 8 | 2 << 9
    raw = bytearray(nvme_ns(formats=20, flbas=0x20 | 0x2))
    struct.pack_into("<HBB", raw, 128 + 4 * 18, 0, 12, 0)
    high = parse_nvme_namespace(bytes(raw))
    assert high.lba_format == 18 and high.format_cdw10(1) == 0x2 | 1 << 9 | 1 << 12


def test_ata_identify_fields() -> None:
    a = parse_ata_identify(
        ata_identify(
            security=0x29, w82=0x2, w59=0xF000, rotation=1, erase=0x8000 | 30, enhanced=5, trim=True
        )
    )
    assert (a.model, a.serial, a.firmware) == ("QEMU HARDDISK", "QM00001", "2.5+")
    assert a.security_supported and a.security_frozen and a.enhanced_erase_supported
    assert not a.security_enabled and not a.security_locked
    assert (a.erase_minutes, a.enhanced_erase_minutes) == (60, 10)
    assert a.sanitize_supported and a.sanitize_crypto and a.sanitize_block
    assert a.solid_state and a.trim_supported and a.sectors == 1 << 20
    with pytest.raises(ValueError, match="checksum"):
        raw = bytearray(ata_identify())
        raw[100] ^= 1
        parse_ata_identify(bytes(raw))
    with pytest.raises(ValueError, match="ATAPI"):
        parse_ata_identify(b"\x00\x80" + ata_identify(checksum=False)[2:])


def test_what_qemu_offers_and_real_drives_do() -> None:
    # QEMU 7.2's NVMe: Format NVM only (OACS 0x10a, FNA 0, SANICAP 0).
    qemu_nvme = Capabilities("nvme", False, nvme=parse_nvme_controller(nvme_ctrl()))
    p = plan(qemu_nvme, PurgeLevel.PURGE)
    assert (p.method, p.expect, p.shortfall) == (PurgeMethod.NVME_FORMAT_ERASE, Expect.ERASED, "")
    assert (
        dict(p.skipped)[PurgeMethod.NVME_SANITIZE_CRYPTO] == "SANICAP 0x00000000: no crypto erase"
    )
    assert dict(p.skipped)[PurgeMethod.NVME_FORMAT_CRYPTO] == "FNA 0x00: no cryptographic erase"
    # QEMU's AHCI disk: no Security, no SANITIZE: the engine's overwrite, and it says so.
    qemu_ata = Capabilities("ata", True, ata=parse_ata_identify(ata_identify()))
    p = plan(qemu_ata, PurgeLevel.PURGE)
    assert p.method is PurgeMethod.OVERWRITE and "no purge method" in p.shortfall
    assert dict(p.skipped)[PurgeMethod.ATA_SECURITY_ERASE] == "no Security feature set"
    assert p.needs_confirmation
    # A frozen SSD falls past security erase with the reason the service engineer needs.
    frozen = Capabilities(
        "ata", False, ata=parse_ata_identify(ata_identify(security=0x29, w82=0x2, rotation=1))
    )
    p = plan(frozen, PurgeLevel.PURGE)
    assert "needs a power cycle" in dict(p.skipped)[PurgeMethod.ATA_SECURITY_ERASE_ENHANCED]
    # An NVMe drive with crypto sanitize uses it; it erases the whole controller.
    good = Capabilities("nvme", False, nvme=parse_nvme_controller(nvme_ctrl(sanicap=0x7)))
    p = plan(good, PurgeLevel.PURGE)
    assert (p.method, p.expect, p.whole_device, p.skipped) == (
        PurgeMethod.NVME_SANITIZE_CRYPTO,
        Expect.CHANGED,
        True,
        (),
    )
    # An SD card: no eMMC secure erase; the flash overwrite, clear only.
    sd = plan(Capabilities("sd", False), PurgeLevel.PURGE)
    assert sd.method is PurgeMethod.OVERWRITE and "remapped blocks" in sd.shortfall
    assert plan(Capabilities("sd", False), PurgeLevel.CLEAR).shortfall == ""


def _all_capabilities() -> list[Capabilities]:
    out = []
    for transport, rotational in itertools.product(
        ("nvme", "ata", "scsi", "mmc", "sd", "usb", "virtio", "file"), (True, False, None)
    ):
        if transport == "nvme":
            for oacs, sanicap, fna in itertools.product((0, 0x2, 0x3), range(8), (0, 1, 4, 5)):
                out.append(
                    Capabilities(
                        transport,
                        rotational,
                        nvme=parse_nvme_controller(nvme_ctrl(oacs=oacs, sanicap=sanicap, fna=fna)),
                    )
                )
            out.append(Capabilities(transport, rotational))  # Identify unreadable
        elif transport == "ata":
            for sec, w82, w59, rot in itertools.product(
                range(64), (0, 2), (0, 0x1000, 0x3000, 0x5000, 0x9000, 0xF000), (0, 1, 7200)
            ):
                out.append(
                    Capabilities(
                        transport,
                        rotational,
                        ata=parse_ata_identify(
                            ata_identify(security=sec, w82=w82, w59=w59, rotation=rot)
                        ),
                    )
                )
        else:
            for secure in (False, True) if transport == "mmc" else (False,):
                out.append(Capabilities(transport, rotational, mmc_secure_erase=secure))
    return out


@pytest.mark.parametrize("level", list(PurgeLevel))
def test_every_combination(level: PurgeLevel) -> None:
    combos = _all_capabilities()
    assert len(combos) > 4000
    for caps in combos:
        p = plan(caps, level)
        position = ORDER.index(p.method)
        # Every stronger method was considered and has a reason; none weaker was.
        assert [m for m, _ in p.skipped] == ORDER[:position], caps
        assert all(why for _, why in p.skipped)
        if p.method is PurgeMethod.OVERWRITE:
            assert p.achieves is PurgeLevel.CLEAR and p.expect is Expect.ENGINE
            assert bool(p.shortfall) == (level is PurgeLevel.PURGE)
        else:
            assert p.achieves >= level and not p.shortfall
            # The chosen method is one the device reported.
            if p.method.value.startswith("nvme"):
                assert caps.transport == "nvme" and caps.nvme is not None
                assert caps.nvme.format_supported or "sanitize" in p.method.value
            elif p.method.value.startswith("ata"):
                assert caps.ata is not None
                ata = caps.ata
                assert ata.sanitize_supported or (
                    ata.security_supported and not ata.security_frozen
                )
            else:
                assert caps.mmc_secure_erase
        assert p.needs_confirmation == (p.whole_device or bool(p.shortfall))


DATA = Path(__file__).resolve().parents[1] / "data" / "identify"


def test_recorded_identify_data_from_qemu_7_2() -> None:
    """Dumps read by the project's own probe from QEMU's emulated devices (the ATA one in
    the drive's layout: libata's readable strings turned back)."""
    ctrl = parse_nvme_controller((DATA / "qemu-7.2-nvme-identify-controller.bin").read_bytes())
    assert (ctrl.vid, ctrl.model, ctrl.oacs, ctrl.sanicap, ctrl.fna) == (
        0x1B36,
        "QEMU NVMe Ctrl",
        0x10A,
        0,
        0,
    )
    assert ctrl.format_supported and not ctrl.security_send_receive
    ns = parse_nvme_namespace((DATA / "qemu-7.2-nvme-identify-namespace.bin").read_bytes())
    assert (ns.size_blocks, ns.block_size) == (16384, 512)
    ata = parse_ata_identify((DATA / "qemu-7.2-ata-identify.bin").read_bytes())
    assert (ata.model, ata.serial, ata.firmware) == ("QEMU HARDDISK", "QM00005", "2.5+")
    assert not ata.security_supported and not ata.sanitize_supported and ata.sectors == 16384
    assert plan(Capabilities("nvme", False, nvme=ctrl), PurgeLevel.PURGE).method is (
        PurgeMethod.NVME_FORMAT_ERASE
    )
    assert (
        plan(Capabilities("ata", True, ata=ata), PurgeLevel.PURGE).method is PurgeMethod.OVERWRITE
    )


@pytest.mark.parametrize("level", list(PurgeLevel))
def test_a_named_method_always_says_why_and_needs_confirmation(level: PurgeLevel) -> None:
    for caps in _all_capabilities()[::37]:
        for method in PurgeMethod:
            p = named(caps, level, method)
            assert p.method is method and p.shortfall.startswith(NAMED), (caps, method)
            assert p.needs_confirmation
            chosen = plan(caps, level)
            # What the planner would skip is explained by the same reason.
            why = dict(chosen.skipped).get(method)
            if why and not why.startswith("reaches"):
                assert p.shortfall.endswith(why)
            if method is not PurgeMethod.OVERWRITE and method is not PurgeMethod.SCSI_FORMAT_UNIT:
                assert p.expect is not Expect.ENGINE


def test_sanitize_status_log_page() -> None:
    def page(
        sprog: int,
        sstat: int,
        scdw10: int = 2,
        eto: int = 0xFFFFFFFF,
        etbe: int = 120,
        etce: int = 5,
    ) -> bytes:
        return struct.pack("<HHIIII", sprog, sstat, scdw10, eto, etbe, etce).ljust(512, b"\0")

    running = parse_sanitize_status(page(0x4000, 0x2))
    assert running.state is SanitizeState.IN_PROGRESS and running.progress == 0.25
    assert running.estimates_s == {"block": 120.0, "crypto": 5.0} and running.action == 2
    done = parse_sanitize_status(page(0xFFFF, 0x1 | (1 << 3) | 0x100, scdw10=3))
    assert done.succeeded and done.progress == 1.0 and done.passes == 1
    assert parse_sanitize_status(page(0xFFFF, 0x4)).succeeded
    assert parse_sanitize_status(page(0xFFFF, 0x3)).state is SanitizeState.FAILED
    assert parse_sanitize_status(page(0xFFFF, 0x0)).state is SanitizeState.NEVER
    for bad in (b"", page(0, 0x5), page(0, 0x7)[:19]):
        with pytest.raises(ValueError):
            parse_sanitize_status(bad)
    # The planner takes its estimates.
    caps = Capabilities(
        "nvme", False, nvme=parse_nvme_controller(nvme_ctrl(sanicap=0x2)), nvme_sanitize=running
    )
    p = plan(caps, PurgeLevel.PURGE)
    assert (p.method, p.estimate_s) == (PurgeMethod.NVME_SANITIZE_BLOCK, 120.0)
    assert (
        PurgeMethod.NVME_SANITIZE_BLOCK.background and not PurgeMethod.NVME_FORMAT_ERASE.background
    )


def test_hdparm_sanitize_status_text() -> None:
    """As hdparm 9.65 prints `--sanitize-status` (the state line, then the progress or the
    last operation's outcome)."""
    head = "\n/dev/sda:\nIssuing SANITIZE_STATUS command\nSanitize status:\n"
    assert parse_hdparm_sanitize_status(
        head + "    State:    SD2 Sanitize operation In Process\n    Progress: 0x8000 (50%)\n"
    ) == AtaSanitizeStatus("running", 0.5)
    assert parse_hdparm_sanitize_status(
        head + "    State:    SD0 Sanitize Idle\n    Last Sanitize Operation Completed "
        "Without Error\n"
    ) == AtaSanitizeStatus("completed", 1.0)
    assert (
        parse_hdparm_sanitize_status(
            head + "    State:    SD0 Sanitize Idle\n    Last Sanitize Operation Completed "
            "With Error\n"
        ).state
        == "failed"
    )
    assert parse_hdparm_sanitize_status(head + "    State:    SD0 Sanitize Idle\n").state == "idle"
    assert parse_hdparm_sanitize_status("SANITIZE feature set is not supported").state == "idle"


def test_emmc_ext_csd() -> None:
    raw = bytearray(512)
    raw[192], raw[231] = 8, 0x55  # eMMC 5.1: secure erase, GC clean, sanitize (and BD)
    ext = parse_ext_csd(bytes(raw))
    assert ext.revision == 8 and ext.secure_erase and ext.secure_gc and ext.sanitize
    raw[231] = 0x40  # sanitize only: no secure erase for blkdiscard --secure
    assert not parse_ext_csd(bytes(raw)).secure_erase
    with pytest.raises(ValueError):
        parse_ext_csd(b"\0" * 511)
    caps = Capabilities("mmc", False, mmc_secure_erase=True)
    assert plan(caps, PurgeLevel.PURGE).method is PurgeMethod.MMC_SECURE_ERASE
    assert (
        dict(plan(Capabilities("mmc", False), PurgeLevel.PURGE).skipped)[
            PurgeMethod.MMC_SECURE_ERASE
        ]
        == "EXT_CSD: no secure erase"
    )


def test_areas_where_sectors_can_hide_are_read_from_identify() -> None:
    plain = parse_ata_identify(ata_identify())
    assert not (
        plain.hpa_supported or plain.hpa_enabled or plain.dco_supported or plain.ama_supported
    )
    a = parse_ata_identify(ata_identify(w82=0x400, w85=0x400, w83=0x800, w119=0x4100))
    assert a.hpa_supported and a.hpa_enabled and a.dco_supported and a.ama_supported
    # Word 119 is valid only with bits 15:14 = 01.
    assert not parse_ata_identify(ata_identify(w119=0xC100)).ama_supported


def test_hdparm_native_max_text() -> None:
    text = "\n/dev/sda:\n max sectors   = 976771055/976773168, HPA is enabled\n"
    assert parse_hdparm_max_sectors(text) == (976771055, 976773168)
    disabled = "\n/dev/sdb:\n max sectors   = 41943040/41943040, HPA is disabled\n"
    assert parse_hdparm_max_sectors(disabled) == (41943040, 41943040)
    with pytest.raises(ValueError, match="no max sectors"):
        parse_hdparm_max_sectors("SG_IO: bad/missing sense data, sb[]:  70 00 05 00")


@pytest.mark.parametrize("level", [PurgeLevel.CLEAR, PurgeLevel.PURGE])
def test_a_hidden_area_is_a_shortfall_of_an_overwrite(level: PurgeLevel) -> None:
    """nwipe's lesson: a Host Protected Area keeps sectors the block device does not show;
    an overwrite that cannot reach them must say so, and needs confirmation."""
    hidden = Capabilities(
        "ata",
        True,
        ata=parse_ata_identify(ata_identify(w82=0x400, w85=0x400)),
        max_sectors=(1000, 1320),
    )
    assert hidden.hidden_sectors == 320
    p = plan(hidden, level)
    assert p.method is PurgeMethod.OVERWRITE and p.needs_confirmation
    assert "320 sectors beyond the visible end (a Host Protected Area or DCO)" in p.shortfall
    assert "320 sectors beyond" in named(hidden, level, PurgeMethod.OVERWRITE).shortfall
    shown = Capabilities("ata", True, ata=hidden.ata, max_sectors=(1000, 1000))
    assert shown.hidden_sectors == 0
    assert plan(shown, PurgeLevel.CLEAR).shortfall == ""
