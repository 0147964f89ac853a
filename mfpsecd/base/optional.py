"""The optional parts of the product: SNMP traps, card login, the printable certificate.
Each needs a Python package an image may leave out, and each is a meson option
(`-Dsnmp=disabled`, `-Dcard_login=disabled`, `-Dpdf=disabled`) and a Python extra
(`mfpsecd[snmp,card-login,pdf]`). A build that leaves a part out does not install its
modules and says so in `mfpsecd/_parts.py` (written by meson). A configuration that uses
a part this installation lacks is refused at start and by `mfpsecd check-config`, by name,
rather than failing at the first trap or login; a call that needs one (a printable
certificate) is refused with PartUnavailable."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from mfpsecd.base.config.schema import Config
from mfpsecd.base.errors import ErrorCode, MfpsecError


@dataclass(frozen=True)
class Part:
    module: str  # the package it needs
    extra: str  # the Python extra that installs it
    what: str


PARTS = {
    "snmp": Part("pysnmp", "snmp", "SNMP traps"),
    "card_login": Part("pkcs11", "card-login", "card login"),
    "pdf": Part("reportlab", "pdf", "the printable certificate"),
}


def left_out() -> frozenset[str]:
    """The parts this build leaves out (none in a checkout: no _parts.py there)."""
    try:
        parts = importlib.import_module("mfpsecd._parts")
    except ImportError:
        return frozenset()
    return frozenset(getattr(parts, "LEFT_OUT", ()))


def missing(name: str) -> str:
    """Why the part cannot be used in this installation, "" when it can."""
    part = PARTS[name]
    if name in left_out():
        return f"this build of mfpsecd leaves out {part.what} (meson -D{name}=disabled)"
    if importlib.util.find_spec(part.module) is None:
        return f"{part.module} ({part.what}) is not installed: the Python extra {part.extra!r}"
    return ""


def require(name: str, *, key: str) -> None:
    """CONFIG_INVALID naming `key` when the part cannot be used here."""
    why = missing(name)
    if why:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID, f"{key} is configured, but {why}", key=key, reason=why
        )


def require_for_call(name: str) -> None:
    """PART_UNAVAILABLE when a call needs a part this installation lacks."""
    why = missing(name)
    if why:
        raise MfpsecError(ErrorCode.PART_UNAVAILABLE, part=name, reason=why)


def check_config(cfg: Config) -> None:
    """Every part the configuration uses is there."""
    if cfg.notify.snmp is not None:
        require("snmp", key="notify.snmp")
    if cfg.auth.card.module:
        require("card_login", key="auth.card.module")
