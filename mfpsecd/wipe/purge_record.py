"""A media-aware purge as the wipe service keeps it (SPEC W-3..W-5): the plan the device's
own Identify data led to, the evidence, what each issue of the command reported, and
what the read-back found. Stored with the job, so a power cut resumes or re-issues the
command and the certificate is built from the record alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

import msgspec

from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.model import purge_verify
from mfpsecd.wipe.model.purge_plan import Capabilities, Expect, Plan, PurgeMethod
from mfpsecd.wipe.ports import MediaInfo, MediaProbe

# A crypto erase is judged against digests taken before it; they are kept with the job
# (8 bytes each: a block unchanged by chance is a 2^-64 event), so their number is bounded.
MAX_BEFORE_SAMPLES = 65536
_SHORT = 8


class PurgeRecord(msgspec.Struct, kw_only=True):
    requested: str  # "clear" | "purge"
    method: str  # core.purge_plan.Method value
    achieves: str
    expect: str  # core.purge_plan.Expect value
    whole_device: bool
    estimate_s: float
    skipped: list[tuple[str, str]]
    shortfall: str
    transport: str
    rotational: str
    facts: list[str]
    identify: dict[str, str]  # hex
    problems: list[str]
    block: int
    fraction: float
    seed: int
    # The one-time ATA drive password a Security Erase needs, kept until the erase is over
    # so a power cut between setting it and the erase does not leave the drive locked.
    secret: str = ""
    confirmed_by: str = ""
    before: str = ""  # hex, _SHORT bytes per sampled block, crypto erase only
    issued: int = 0  # times the device command was issued
    device_said: list[str] = msgspec.field(default_factory=list)
    finding: str = ""  # the read-back's verdict ("" until it ran)
    verified: bool = False

    @property
    def device_method(self) -> bool:
        return self.method != PurgeMethod.OVERWRITE.value


_ROTATIONAL = {True: "yes", False: "no", None: "unknown"}


def facts(caps: Capabilities) -> list[str]:
    """The Identify fields the plan rests on, decoded for a reader of the certificate."""
    out = []
    if caps.nvme is not None:
        n = caps.nvme
        out += [
            f"NVMe {n.model} serial {n.serial} firmware {n.firmware}",
            f"OACS 0x{n.oacs:04x} (Format NVM {'yes' if n.format_supported else 'no'})",
            f"SANICAP 0x{n.sanicap:08x} (crypto {_yn(n.sanitize_crypto)}, block "
            f"{_yn(n.sanitize_block)}, overwrite {_yn(n.sanitize_overwrite)})",
            f"FNA 0x{n.fna:02x} (crypto erase {_yn(n.format_crypto_erase)}, all "
            f"namespaces {_yn(n.format_all_namespaces)})",
        ]
    if caps.nvme_sanitize is not None:
        s = caps.nvme_sanitize
        out.append(f"Sanitize Status: {s.state.name.lower()}, estimates {s.estimates_s}")
    if caps.ata is not None:
        a = caps.ata
        out += [
            f"ATA {a.model} serial {a.serial} firmware {a.firmware}",
            f"security supported {_yn(a.security_supported)} enabled "
            f"{_yn(a.security_enabled)} locked {_yn(a.security_locked)} frozen "
            f"{_yn(a.security_frozen)} enhanced erase {_yn(a.enhanced_erase_supported)}",
            f"SANITIZE supported {_yn(a.sanitize_supported)} (crypto "
            f"{_yn(a.sanitize_crypto)}, block {_yn(a.sanitize_block)}, overwrite "
            f"{_yn(a.sanitize_overwrite)})",
            f"rotation rate {a.rotation_rate or 'not reported'}",
            f"HPA supported {_yn(a.hpa_supported)} enabled {_yn(a.hpa_enabled)}, DCO "
            f"{_yn(a.dco_supported)}, accessible max address {_yn(a.ama_supported)}",
        ]
    if caps.max_sectors is not None:
        visible, native = caps.max_sectors
        out.append(
            f"max sectors {visible} visible of {native} native: "
            + (f"{caps.hidden_sectors} HIDDEN" if caps.hidden_sectors else "none hidden")
        )
    if caps.transport in ("mmc", "sd"):
        out.append(f"{caps.transport} secure erase {_yn(caps.mmc_secure_erase)}")
    return out


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def new_record(
    probe: MediaProbe, chosen: Plan, info: MediaInfo, *, fraction: float, confirmed_by: str
) -> PurgeRecord:
    block = max(4096, info.logical_block)
    if chosen.expect is Expect.CHANGED and info.size_bytes > 0:
        fraction = min(fraction, MAX_BEFORE_SAMPLES * block / info.size_bytes)
    caps = probe.capabilities
    ata = chosen.method in (PurgeMethod.ATA_SECURITY_ERASE, PurgeMethod.ATA_SECURITY_ERASE_ENHANCED)
    return PurgeRecord(
        requested=chosen.requested.name.lower(),
        method=chosen.method.value,
        achieves=chosen.achieves.name.lower(),
        expect=chosen.expect.value,
        whole_device=chosen.whole_device,
        estimate_s=chosen.estimate_s,
        skipped=[(m.value, why) for m, why in chosen.skipped],
        shortfall=chosen.shortfall,
        transport=caps.transport,
        rotational=_ROTATIONAL[caps.rotational],
        facts=facts(caps),
        identify={k: v.hex() for k, v in probe.raw.items()},
        problems=list(probe.problems),
        block=block,
        fraction=fraction,
        seed=int.from_bytes(secrets.token_bytes(8), "big"),
        secret=secrets.token_hex(8) if ata else "",
        confirmed_by=confirmed_by,
    )


def positions(rec: PurgeRecord, size: int) -> Sequence[int]:
    return purge_verify.positions(size, rec.block, rec.fraction, seed=rec.seed)


def digests_before(samples: Iterable[tuple[int, bytes]]) -> str:
    """What PurgeRecord.before keeps: a digest prefix per sampled block, in order."""
    return b"".join(purge_verify.digest(d)[:_SHORT] for _, d in samples).hex()


def blocks_before(rec: PurgeRecord) -> int:
    return len(rec.before) // (2 * _SHORT)


def judge(
    rec: PurgeRecord, where: Sequence[int], samples: Iterable[tuple[int, bytes]]
) -> purge_verify.Finding:
    """samples: the blocks at `where` (the record's positions) as read back now."""
    before = None
    if rec.expect == Expect.CHANGED.value:
        raw = bytes.fromhex(rec.before)
        before = {off: raw[i * _SHORT : (i + 1) * _SHORT] for i, off in enumerate(where)}
    return purge_verify.check(Expect(rec.expect), samples, before)


def verification(rec: PurgeRecord) -> cert.Verification:
    expect = {
        "zeros": "every sampled block all 0x00",
        "erased": "every sampled block uniformly 0x00 or 0xFF",
        "changed": "no sampled block holding what it held before the erase",
    }
    if not rec.device_method:
        return cert.Verification(
            method="full read-back of every byte, compared with the last pass",
            result="passed" if rec.verified else "failed",
        )
    share = "every block" if rec.fraction >= 1.0 else f"{rec.fraction:.2%} of the blocks"
    return cert.Verification(
        method=f"read-back bypassing the cache of {share} ({rec.block}-byte blocks, the "
        f"first and last included, spread with seed {rec.seed}): "
        f"{expect[rec.expect]}; {rec.finding}",
        result="passed" if rec.verified else "failed",
    )


def certificate_purge(rec: PurgeRecord) -> cert.Purge:
    return cert.Purge(
        requested=rec.requested,
        achieved=rec.achieves,
        method=rec.method,
        expect=rec.expect,
        whole_device=rec.whole_device,
        skipped=[cert.Skipped(method=m, reason=why) for m, why in rec.skipped],
        shortfall=rec.shortfall,
        device_said=list(rec.device_said),
        confirmed_by=rec.confirmed_by,
        evidence=cert.Evidence(
            transport=rec.transport,
            rotational=rec.rotational,
            facts=list(rec.facts),
            identify=dict(rec.identify),
            problems=list(rec.problems),
        ),
    )
