"""The device's security level, graded from its S-1 posture the way fwupd's Host Security
ID grades a PC: a list of checks, each belonging to a level; the device is at the highest
level whose checks, and every lower level's, all pass. A "!" after the level (as in
fwupd's "HSI:2!") says something at run time weakens what the level promises: a part of
the daemon that is not ok, or a posture item that could not be read.

    level 0  below level 1
    level 1  the basics an administrator must set: an administrator password that
             follows the rules, storage encryption, temporary data overwritten, and the
             firmware verified at this power-on
    level 2  hardened: enhanced security mode (a firmware that fails the check does not
             boot), the keys in a TPM, the IP filter on, the audit log forwarded, the USB
             ports under a policy (or none on the board)
    level 3  as far as this product goes: the keys sealed to the measured firmware (a
             PCR policy), the firmware rewrite lock on, and post-quantum (hybrid
             ECDSA P-384 + ML-DSA-87) firmware signatures required by the trust store

The levels are stable: a check may be added to a level in a later release only with a
new report format.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfpsecd.base.posture import UNREADABLE, UNREPORTED, PostureId, PostureItem, PostureState

TOP_LEVEL = 3


@dataclass(frozen=True)
class Hardening:
    """What the posture items do not say and the levels need, from the firmware and key
    capabilities (the composition root reads it)."""

    boot_verified: bool  # this power-on's firmware check passed (in either mode)
    boot_detail: str  # what was verified, or why not
    rewrite_locked: bool  # the administrator's firmware rewrite lock is on (F-3)
    post_quantum_roots: int  # trust-store roots with an ML-DSA-87 key: hybrid signatures
    keys_bound_to: str  # the PCR policy the wrapping key opens under ("" for none)


@dataclass(frozen=True)
class Check:
    id: str  # stable, e.g. "ip-filter"
    level: int  # 1-3: the level it belongs to
    title: str
    met: bool
    detail: str  # what was found: the setting, or why the check failed


@dataclass(frozen=True)
class Grade:
    level: int  # 0-3
    runtime_issues: tuple[str, ...]  # what weakens the level now (the "!")
    checks: tuple[Check, ...]  # every check, level by level

    @property
    def text(self) -> str:
        """As fwupd writes it: "MFPSEC:2", or "MFPSEC:2!" with runtime issues."""
        return f"MFPSEC:{self.level}{'!' if self.runtime_issues else ''}"


def _on(
    items: dict[PostureId, PostureItem],
    which: PostureId,
    check: str,
    level: int,
    title: str,
    *,
    or_absent: bool = False,
) -> Check:
    item = items[which]
    ok = item.state is PostureState.ON or (or_absent and item.state is PostureState.NOT_APPLICABLE)
    detail = "; ".join(x for x in (item.state.value, item.setting, item.detail) if x)
    return Check(check, level, title, ok, detail)


def checks(items: dict[PostureId, PostureItem], hardening: Hardening) -> list[Check]:
    h = hardening
    return [
        _on(items, PostureId.ADMIN_PASSWORD, "admin-password", 1, "Administrator password set"),
        _on(items, PostureId.STORAGE_ENCRYPTION, "storage-encryption", 1, "Storage encryption"),
        _on(
            items,
            PostureId.TEMPORARY_DATA_OVERWRITE,
            "temporary-data-overwrite",
            1,
            "Temporary data overwritten",
        ),
        Check(
            "firmware-verified", 1, "Firmware verified at power-on", h.boot_verified, h.boot_detail
        ),
        _on(
            items,
            PostureId.FIRMWARE_VERIFICATION,
            "firmware-verification-enhanced",
            2,
            "Enhanced security mode (failed firmware does not boot)",
        ),
        _on(items, PostureId.TPM, "tpm", 2, "Keys in a TPM"),
        _on(items, PostureId.IP_FILTER, "ip-filter", 2, "IP filter"),
        _on(items, PostureId.AUDIT_FORWARDING, "audit-forwarding", 2, "Audit log forwarded"),
        _on(items, PostureId.USB_PORTS, "usb-ports", 2, "USB port policy", or_absent=True),
        Check(
            "keys-firmware-policy",
            3,
            "Keys sealed to the measured firmware",
            bool(h.keys_bound_to),
            f"bound to {h.keys_bound_to}" if h.keys_bound_to else "not bound to PCRs",
        ),
        Check(
            "firmware-rewrite-lock",
            3,
            "Firmware rewrite lock",
            h.rewrite_locked,
            "on" if h.rewrite_locked else "off: firmware updates are accepted",
        ),
        Check(
            "post-quantum-signatures",
            3,
            "Hybrid ECDSA P-384 + ML-DSA-87 firmware signatures required",
            h.post_quantum_roots > 0,
            f"{h.post_quantum_roots} post-quantum root(s) in the trust store"
            if h.post_quantum_roots
            else "no post-quantum root: ECDSA signatures alone are accepted",
        ),
    ]


def grade(items: dict[PostureId, PostureItem], hardening: Hardening, degraded: list[str]) -> Grade:
    """degraded: the daemon's components that are not ok now."""
    found = checks(items, hardening)
    level = 0
    for candidate in range(1, TOP_LEVEL + 1):
        if not all(c.met for c in found if c.level == candidate):
            break
        level = candidate
    issues = [f"component {name} is not ok" for name in degraded]
    issues += [
        f"{item.id.value}: {item.detail}"
        for item in items.values()
        if item.state is PostureState.OFF and item.detail.startswith((UNREADABLE, UNREPORTED))
    ]
    return Grade(level, tuple(issues), tuple(found))
