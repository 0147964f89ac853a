"""Whether one version of a Varlink interface can replace another without breaking a
client written against the older one (the versioning policy: additive changes only
within a major version). Both are read by an independent parser (PyPI varlink), so the
check holds the text clients see, not our own model of it."""

from __future__ import annotations

from typing import Any

import varlink

_SCALARS: tuple[tuple[type, str], ...] = (
    (bool, "bool"),  # before int: a bool is an int
    (str, "string"),
    (int, "int"),
    (float, "float"),
    (set, "[string]()"),
)
_WRAPPERS = {"_Maybe": "?", "_Array": "[]", "_Dict": "[string]"}


def signature(t: Any) -> str:
    """A type as canonical Varlink text, from the parser's representation."""
    for kind_of, text in _SCALARS:
        if isinstance(t, kind_of):
            return text
    kind = type(t).__name__
    if kind in _WRAPPERS:
        return _WRAPPERS[kind] + signature(t.element_type)
    if kind == "_Object":
        return "object"
    if kind == "_CustomType":
        return str(t.name)
    if kind == "_Struct":
        return "(" + ", ".join(f"{k}: {signature(v)}" for k, v in t.fields.items()) + ")"
    if kind == "_Enum":
        return "(" + ", ".join(t.fields) + ")"
    raise TypeError(f"unknown Varlink type {t!r}")


def _names_in(t: Any) -> set[str]:
    kind = type(t).__name__
    if kind == "_CustomType":
        return {str(t.name)}
    if kind in ("_Maybe", "_Array", "_Dict"):
        return _names_in(t.element_type)
    if kind == "_Struct":
        return set().union(*(_names_in(v) for v in t.fields.values()))
    return set()


def _reachable(iface: varlink.Interface, *, sent: bool) -> set[str]:
    """Named types a client may send (reachable from some method's parameters), or may
    receive (from a result or an error)."""
    roots: list[Any] = []
    for m in iface.members.values():
        kind = type(m).__name__
        if kind == "_Method":
            roots.append(m.in_type if sent else m.out_type)
        elif kind == "_Error" and not sent:
            roots.append(m.type)
    seen: set[str] = set()
    todo = set().union(*(_names_in(t) for t in roots))
    while todo:
        name = todo.pop()
        if name in seen or name not in iface.members:
            continue
        seen.add(name)
        todo |= _names_in(iface.members[name].type)
    return seen


def _fields(old: Any, new: Any, where: str, *, sent: bool) -> list[str]:
    """A struct's fields: none removed or retyped; a new one, in what clients send, only
    optional (an old client does not send it)."""
    out = []
    for name, t in old.fields.items():
        if name not in new.fields:
            out.append(f"{where}: field {name} removed")
        elif signature(new.fields[name]) != signature(t):
            out.append(
                f"{where}: field {name} is {signature(new.fields[name])}, was {signature(t)}"
            )
    if sent:
        for name, t in new.fields.items():
            if name not in old.fields and not signature(t).startswith("?"):
                out.append(f"{where}: new input field {name} is required")
    return out


def breaks(old_text: str, new_text: str) -> list[str]:
    """What in new_text would break a client of old_text ([] when it is additive)."""
    old, new = varlink.Interface(old_text), varlink.Interface(new_text)
    if old.name != new.name:
        return [f"interface renamed {old.name} -> {new.name}"]
    sent, received = _reachable(new, sent=True), _reachable(new, sent=False)
    out: list[str] = []
    for name, member in old.members.items():
        kind = type(member).__name__
        other = new.members.get(name)
        if other is None or type(other).__name__ != kind:
            out.append(f"{name} removed")
            continue
        if kind == "_Method":
            out += _fields(member.in_type, other.in_type, f"{name} parameters", sent=True)
            out += _fields(member.out_type, other.out_type, f"{name} result", sent=False)
        elif kind == "_Error":
            out += _fields(member.type, other.type, f"error {name}", sent=False)
        elif type(member.type).__name__ == "_Enum":
            gone = [v for v in member.type.fields if v not in other.type.fields]
            out += [f"{name}: value {v} removed" for v in gone]
            if name in received:  # an old client could not read a value it never knew
                new_values = [v for v in other.type.fields if v not in member.type.fields]
                out += [f"{name}: value {v} added to what clients receive" for v in new_values]
        elif type(other.type).__name__ != type(member.type).__name__:
            out.append(f"{name} changed kind")
        else:
            out += _fields(member.type, other.type, name, sent=name in sent)
    return out
