"""Generate the Varlink interface description text from the Python declarations.

The generated text is what GetInterfaceDescription serves, and it is committed beside the
module that declares the interface as <interface>.varlink (written by tools/write_idl.py,
`make idl`); a contract test fails when the two drift.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import msgspec
import msgspec.inspect as mi

from mfpsecd.varlink.schema import Interface


def _comment(doc: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in doc.strip().splitlines()]


class _Collector:
    """Walks types, renders Varlink type expressions and collects named types in order."""

    def __init__(self) -> None:
        self.named: dict[str, type] = {}

    def render(self, t: mi.Type) -> str:
        if isinstance(t, mi.Metadata):  # a description for people (README): the type inside
            return self.render(t.type)
        if isinstance(t, mi.StrType):
            return "string"
        if isinstance(t, mi.BytesType | mi.ByteArrayType):
            return "string"  # base64, as JSON carries binary
        if isinstance(t, mi.BoolType):
            return "bool"
        if isinstance(t, mi.IntType):
            return "int"
        if isinstance(t, mi.FloatType):
            return "float"
        if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType):
            return "[]" + self.render(t.item_type)
        if isinstance(t, mi.DictType):
            if not isinstance(t.key_type, mi.StrType):
                raise TypeError("Varlink maps are keyed by string")
            return "[string]" + self.render(t.value_type)
        if isinstance(t, mi.UnionType):
            others = [u for u in t.types if not isinstance(u, mi.NoneType)]
            if len(others) != 1 or len(others) == len(t.types):
                raise TypeError(f"only T | None unions map to Varlink: {t}")
            return "?" + self.render(others[0])
        if isinstance(t, mi.EnumType):
            self._add(t.cls)
            return t.cls.__name__
        if isinstance(t, mi.StructType):
            self._add(t.cls)
            return t.cls.__name__
        if isinstance(t, mi.AnyType):
            return "object"
        raise TypeError(f"no Varlink mapping for {t}")

    def _add(self, cls: type) -> None:
        existing = self.named.get(cls.__name__)
        if existing is not None and existing is not cls:
            raise TypeError(f"two types named {cls.__name__}")
        if existing is None:
            self.named[cls.__name__] = cls
            if issubclass(cls, msgspec.Struct):
                self.fields(cls)  # collect nested types

    def fields(self, struct: type[msgspec.Struct]) -> list[str]:
        info = mi.type_info(struct)
        assert isinstance(info, mi.StructType)
        return [f"{f.encode_name}: {self.render(f.type)}" for f in info.fields]


def _block(head: str, fields: list[str]) -> list[str]:
    if not fields:
        return [f"{head}()"]
    return [f"{head}(", *[f"  {f}," for f in fields[:-1]], f"  {fields[-1]}", ")"]


def _method_line(name: str, params: list[str], result: list[str]) -> list[str]:
    left = _block(f"method {name}", params)
    right = _block("", result)
    # Joins "... )" and "-> (" on one line, the way hand-written Varlink files read.
    return [*left[:-1], left[-1] + " -> " + right[0], *right[1:]]


def generate(interface: Interface) -> str:
    c = _Collector()
    methods: list[list[str]] = []
    for m in interface.methods:
        lines = _comment(m.doc)
        lines += _method_line(m.name, c.fields(m.params), c.fields(m.result))
        methods.append(lines)
    for extra in interface.extra_types:
        c.render(mi.type_info(extra))

    out = [*_comment(interface.doc), f"interface {interface.name}", ""]
    for name in sorted(c.named):
        cls = c.named[name]
        if cls.__doc__ and cls.__doc__.strip():
            out += _comment(cls.__doc__)
        if issubclass(cls, enum.Enum):
            out.append(f"type {name} ({', '.join(str(v.value) for v in cls)})")
        else:
            assert issubclass(cls, msgspec.Struct)
            out += _block(f"type {name} ", c.fields(cls))
        out.append("")
    for lines in methods:
        out += lines
        out.append("")
    for code in interface.errors:
        out += _comment(code.meaning)
        params = [f"{p}: {c.render(mi.type_info(t))}" for p, t in code.params]
        out.append(f"error {code.short_name} ({', '.join(params)})")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def idl_path(interface: Interface) -> Path:
    """Beside the module that declares the interface (a capability's api.py)."""
    if not interface.module:
        raise ValueError(f"{interface.name} names no declaring module")
    declared = sys.modules[interface.module].__file__
    assert declared is not None
    return Path(declared).parent / f"{interface.name}.varlink"
