"""What a management function changed, for its audit record (FMT_MTD.1, FAU_GEN.1): every
leaf of a settings structure (msgspec structs and dataclasses, nested) whose value differs,
by its dotted key path, with the old and the new value. A secret's value never appears:
it is recorded as "changed".
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator

import msgspec

MAX_VALUE = 200  # characters of a value kept in the record; a long list is summarised

Detail = str | int | float | bool


def _fields(obj: object) -> list[str] | None:
    if isinstance(obj, msgspec.Struct):
        return list(obj.__struct_fields__)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [f.name for f in dataclasses.fields(obj)]
    return None


def shown(value: object) -> str:
    """A leaf value as the record shows it: enums by value, sets sorted, long ones cut."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, frozenset | set):
        text = ", ".join(sorted(shown(v) for v in value)) or "(none)"
    elif isinstance(value, tuple | list):
        text = ", ".join(shown(v) for v in value) or "(none)"
    else:
        text = str(value)
    if len(text) > MAX_VALUE:
        count = (
            f" ({len(value)} items)" if isinstance(value, tuple | list | set | frozenset) else ""
        )
        text = text[: MAX_VALUE - 20] + "..." + count
    return text


def changes(
    old: object, new: object, *, prefix: str = "", secrets: frozenset[str] = frozenset()
) -> Iterator[tuple[str, str, str]]:
    """(key path, old value, new value) for each leaf that differs, in field order."""
    names = _fields(new)
    if names is None or type(old) is not type(new):
        if old != new:
            if prefix in secrets:
                yield prefix, "changed", "changed"
            else:
                yield prefix, shown(old), shown(new)
        return
    for name in names:
        path = f"{prefix}.{name}" if prefix else name
        yield from changes(getattr(old, name), getattr(new, name), prefix=path, secrets=secrets)


def as_details(
    found: Iterator[tuple[str, str, str]] | list[tuple[str, str, str]],
) -> dict[str, Detail]:
    """Audit details: `changed` lists the key paths; `old.<path>` and `new.<path>` the
    values. Nothing changed: changed = "" (the call still ran and is recorded)."""
    out: dict[str, Detail] = {}
    paths = []
    for path, before, after in found:
        paths.append(path)
        out[f"old.{path}"] = before
        out[f"new.{path}"] = after
    out["changed"] = ", ".join(paths)
    return out
