"""The optional parts of the product (SNMP traps, card login, the printable certificate):
each needs a Python package an image may leave out. A configuration that uses a part
whose package is missing is refused at start, by name, rather than failing at the first
trap or login."""

from __future__ import annotations

import importlib.util

from mfpsecd.base.errors import ErrorCode, MfpsecError


def require(module: str, *, key: str, part: str) -> None:
    """CONFIG_INVALID naming `key` when `module` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            f"{key} is configured, but {module} ({part}) is not installed",
            key=key,
            reason=f"{module} not installed",
        )
