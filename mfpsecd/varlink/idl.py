"""Generate the Varlink interface description text from the Python declarations.

The generated text is what GetInterfaceDescription serves, and it is committed beside the
module that declares the interface as <interface>.varlink (written by tools/write_idl.py,
`make idl`); a contract test fails when the two drift.

It says everything a client in another language needs: each field's comment from the
source (binary fields say they travel as base64), inputs with a default as optional
(`?type`: absent or null means the default), and for each method the privilege it needs,
whether it streams and whether its parameters are secret.
"""

from __future__ import annotations

import enum
import inspect
import io
import sys
import textwrap
import tokenize
import types
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

from mfpsecd.varlink.schema import Interface, Method, restart

_WIDTH = 88


def _comment(doc: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in doc.strip().splitlines()]


def _wrapped(note: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(note, _WIDTH - len(indent))]


def field_comments(cls: type) -> dict[str, str]:
    """The comments written on a struct's fields in its source: the `#` lines just above
    a field and the one at the end of its line, joined."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    fields = set(getattr(cls, "__struct_fields__", ()))
    comments: dict[str, str] = {}
    above: list[str] = []
    line: list[tokenize.TokenInfo] = []

    def field_of_line() -> str | None:
        if len(line) > 1 and line[0].string in fields and line[1].string == ":":
            return line[0].string
        return None

    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            name = field_of_line() if line else None
            if name is not None:
                comments[name] = " ".join([*above, text])
                above = []
            elif not line:
                above.append(text)
        elif tok.type == tokenize.NEWLINE:
            name = field_of_line()
            if name is not None and name not in comments and above:
                comments[name] = " ".join(above)
            above, line = [], []
        elif tok.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
            line.append(tok)
    return comments


def _binary(t: mi.Type) -> bool:
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        return any(_binary(u) for u in t.types)
    return isinstance(t, mi.BytesType | mi.ByteArrayType)


# (comment, "name: type") for one field of a block
_Field = tuple[str, str]


_SCALARS: tuple[tuple[type[mi.Type] | types.UnionType, str], ...] = (
    (mi.StrType, "string"),
    (mi.BytesType | mi.ByteArrayType, "string"),  # base64, as JSON carries binary
    (mi.BoolType, "bool"),
    (mi.IntType, "int"),
    (mi.FloatType, "float"),
    (mi.AnyType, "object"),
)


class _Collector:
    """Walks types, renders Varlink type expressions and collects named types in order."""

    def __init__(self) -> None:
        self.named: dict[str, type] = {}

    def render(self, t: mi.Type) -> str:
        if isinstance(t, mi.Metadata):  # a description for people (README): the type inside
            return self.render(t.type)
        for kinds, name in _SCALARS:
            if isinstance(t, kinds):
                return name
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
        if isinstance(t, mi.EnumType | mi.StructType):
            self._add(t.cls)
            return t.cls.__name__
        raise TypeError(f"no Varlink mapping for {t}")

    def _add(self, cls: type) -> None:
        existing = self.named.get(cls.__name__)
        if existing is not None and existing is not cls:
            raise TypeError(f"two types named {cls.__name__}")
        if existing is None:
            self.named[cls.__name__] = cls
            if issubclass(cls, msgspec.Struct):
                self.fields(cls)  # collect nested types

    def fields(self, struct: type[msgspec.Struct], *, inputs: bool = False) -> list[_Field]:
        """Each field with its comment; as a method's inputs, one with a default is
        optional (the server takes absent or null as the default)."""
        info = mi.type_info(struct)
        assert isinstance(info, mi.StructType)
        notes = field_comments(struct)
        out: list[_Field] = []
        for f in info.fields:
            rendered = self.render(f.type)
            if inputs and not f.required and not rendered.startswith("?"):
                rendered = "?" + rendered
            note = notes.get(f.name, "")
            if _binary(f.type) and "base64" not in note:
                note = f"base64; {note}" if note else "base64"
            out.append((note, f"{f.encode_name}: {rendered}"))
        return out


def _block(head: str, fields: list[_Field], *, in_method: bool = False) -> list[str]:
    if not fields:
        return [f"{head}()"]
    lines = [f"{head}("]
    for i, (note, text) in enumerate(fields):
        # Parsers that find a method's end with the first ")" (python-varlink's) stop
        # inside a comment that holds one.
        shown = note.replace("(", "[").replace(")", "]") if in_method else note
        lines += _wrapped(shown, "  ")
        lines.append(f"  {text}" + ("," if i < len(fields) - 1 else ""))
    return [*lines, ")"]


def _method_line(name: str, params: list[_Field], result: list[_Field]) -> list[str]:
    left = _block(f"method {name}", params, in_method=True)
    right = _block("", result, in_method=True)
    # Joins "... )" and "-> (" on one line, the way hand-written Varlink files read.
    return [*left[:-1], left[-1] + " -> " + right[0], *right[1:]]


def _method_notes(m: Method[Any, Any]) -> list[str]:
    notes = [f"Privilege: {m.requires.value}."]
    if m.streams:
        notes.append('Streams: call with "more": true; the last reply does not continue.')
        if m.resume is restart:
            notes.append("After a lost connection, call again with the same parameters.")
        elif m.resume is not None:
            notes.append("After a lost connection, call again as said above: it resumes.")
        else:
            notes.append("A lost stream cannot be resumed: call again from the start.")
    if m.sensitive:
        notes.append("Sensitive: carries secrets, which the daemon never logs.")
    if m.passes_descriptor:
        notes.append("Takes a descriptor passed on the side channel (see README).")
    return notes


def generate(interface: Interface) -> str:
    c = _Collector()
    methods: list[list[str]] = []
    for m in interface.methods:
        lines = _comment(m.doc) + _comment("\n".join(_method_notes(m)))
        lines += _method_line(m.name, c.fields(m.params, inputs=True), c.fields(m.result))
        methods.append(lines)
    for extra in interface.extra_types:
        c.render(mi.type_info(extra))

    out = [*_comment(interface.doc), f"interface {interface.name}", ""]
    for name in sorted(c.named):
        cls = c.named[name]
        if cls.__doc__ and cls.__doc__.strip():
            out += _comment(inspect.cleandoc(cls.__doc__))
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


def _undocumented_fields(struct: type[msgspec.Struct], where: str) -> list[str]:
    notes = field_comments(struct)
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    return [f"{where}.{f.encode_name}" for f in info.fields if not notes.get(f.name)]


def undocumented(interface: Interface) -> list[str]:
    """What a client reading the IDL would find without a comment: methods, named types,
    and the fields of both ("Method.field" for a method's inputs and outputs)."""
    c = _Collector()
    missing: list[str] = []
    for m in interface.methods:
        if not m.doc.strip():
            missing.append(m.name)
        c.fields(m.params, inputs=True)
        c.fields(m.result)
        missing += _undocumented_fields(m.params, f"{m.name}(in)")
        missing += _undocumented_fields(m.result, f"{m.name}(out)")
    for extra in interface.extra_types:
        c.render(mi.type_info(extra))
    for name, cls in sorted(c.named.items()):
        if not (cls.__doc__ or "").strip():
            missing.append(f"type {name}")
        if issubclass(cls, msgspec.Struct):
            missing += _undocumented_fields(cls, name)
    return missing
