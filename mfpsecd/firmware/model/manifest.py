"""The firmware manifest (SPEC F-1..F-4): what a firmware tree must hold, as data.

A manifest lists every entry of the tree (files with their SHA-256, size and mode,
directories, symbolic links with their target), the firmware version, its security
epoch (anti-rollback) and the hardware models it fits. It is signed as its canonical
JSON bytes (sorted keys, entries sorted by path, no whitespace), and those bytes' SHA-256
is the manifest digest extended into a PCR. The signature is checked on the raw bytes
before this module parses them; the rules here then refuse anything a tree could use to
reach outside itself or to hide an entry: absolute paths, "." and "..", empty or
over-long components, duplicates, an entry under a file or a link, links whose target
leaves the tree, setuid/setgid modes.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

from mfpsecd.base.errors import ErrorCode, MfpsecError

FORMAT = "mfpsecd-firmware-manifest/1"
MAX_PATH = 4096
MAX_COMPONENT = 255
MAX_ENTRIES = 100_000
MAX_MANIFEST_BYTES = 32 << 20

_HEX64 = r"^[0-9a-f]{64}$"
_VERSION = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}\Z"
_MODEL = r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}\Z"


class Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    path: str
    kind: Literal["file", "dir", "symlink"] = "file"
    mode: Annotated[int, msgspec.Meta(ge=0, le=0o7777)] = 0o644
    sha256: str = ""  # files: lower-case hex
    size: Annotated[int, msgspec.Meta(ge=0)] = 0  # files
    target: str = ""  # symlinks: relative, inside the tree


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: str
    product: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    version: Annotated[str, msgspec.Meta(pattern=_VERSION)]
    epoch: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]  # the security epoch
    models: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=_MODEL)]],
        msgspec.Meta(min_length=1, max_length=64),
    ]
    created: str
    entries: list[Entry]


def _invalid(reason: str, path: str = "") -> MfpsecError:
    return MfpsecError(ErrorCode.FIRMWARE_MANIFEST_INVALID, reason=reason, path=path)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def path_problem(path: str) -> str:
    """Why a manifest path is unacceptable, or "" when it is fine."""
    if not path:
        return "empty path"
    if len(path.encode()) > MAX_PATH:
        return "path too long"
    if path.startswith("/"):
        return "absolute path"
    if _CONTROL.search(path) or "\\" in path:
        return "control character or backslash in path"
    if unicodedata.normalize("NFC", path) != path:
        return "path not in Unicode NFC"
    for part in path.split("/"):
        if part == "":
            return "empty path component (a doubled or trailing slash)"
        if part in (".", ".."):
            return f"{part!r} as a path component"
        if len(part.encode()) > MAX_COMPONENT:
            return "path component too long"
    return ""


def _target_problem(link: str, target: str) -> str:
    if not target:
        return "symlink without a target"
    if target.startswith("/"):
        return "symlink to an absolute path"
    if _CONTROL.search(target) or len(target.encode()) > MAX_PATH:
        return "unacceptable symlink target"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        return "symlink target leaves the tree"
    return ""


def check(m: Manifest) -> None:  # noqa: C901 - to split (issue 24)
    """The rules beyond the schema; ManifestInvalid naming the first entry that breaks
    one."""
    if m.format != FORMAT:
        raise _invalid(f"unknown format {m.format!r}")
    if len(m.entries) > MAX_ENTRIES:
        raise _invalid("too many entries")
    kinds: dict[str, str] = {}
    for e in m.entries:
        problem = path_problem(e.path)
        if problem:
            raise _invalid(problem, e.path)
        if e.path in kinds:
            raise _invalid("duplicate entry", e.path)
        kinds[e.path] = e.kind
        if e.mode & 0o6000:
            raise _invalid("setuid or setgid mode", e.path)
        if e.kind == "file":
            if not re.match(_HEX64, e.sha256):
                raise _invalid("file without a SHA-256", e.path)
            if e.target:
                raise _invalid("file with a symlink target", e.path)
        else:
            if e.sha256 or e.size:
                raise _invalid(f"{e.kind} with a digest or size", e.path)
            if e.kind == "symlink":
                problem = _target_problem(e.path, e.target)
                if problem:
                    raise _invalid(problem, e.path)
            elif e.target:
                raise _invalid("directory with a symlink target", e.path)
    for path in kinds:
        parent = posixpath.dirname(path)
        while parent:
            kind = kinds.get(parent)
            if kind is not None and kind != "dir":
                raise _invalid(f"entry under a {kind}", path)
            parent = posixpath.dirname(parent)


_encoder = msgspec.json.Encoder(order="sorted")


def canonical(m: Manifest) -> bytes:
    """The signed form: sorted keys, entries sorted by path, no whitespace."""
    ordered = msgspec.structs.replace(m, entries=sorted(m.entries, key=lambda e: e.path))
    return _encoder.encode(ordered)


def digest(raw: bytes) -> bytes:
    """The manifest digest (of its signed bytes): what is extended into the PCR."""
    return hashlib.sha256(raw).digest()


def parse(raw: bytes) -> Manifest:
    """The manifest from its signed bytes, after the signature was verified: the schema,
    the rules, and the bytes being exactly the canonical form (nothing unsigned can ride
    along in whitespace or key order)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _invalid("manifest too large")
    try:
        m = msgspec.json.decode(raw, type=Manifest)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _invalid(f"malformed: {exc}") from None
    check(m)
    if canonical(m) != raw:
        raise _invalid("not in canonical form")
    return m


def compare(m: Manifest, found: Mapping[str, tuple[str, int, str]]) -> None:
    """The tree as found (path → (kind, mode, symlink target)) against the manifest:
    nothing extra, nothing missing, kinds, modes and link targets equal. File contents
    are the hashing engine's part."""
    expected = {e.path: e for e in m.entries}
    for path in sorted(found.keys() - expected.keys()):
        raise MfpsecError(ErrorCode.FIRMWARE_TREE_MISMATCH, reason="not in the manifest", path=path)
    for path in sorted(expected.keys() - found.keys()):
        raise MfpsecError(ErrorCode.FIRMWARE_TREE_MISMATCH, reason="missing", path=path)
    for path, e in sorted(expected.items()):
        kind, mode, target = found[path]
        if kind != e.kind:
            raise MfpsecError(
                ErrorCode.FIRMWARE_TREE_MISMATCH,
                reason=f"a {kind}, the manifest says {e.kind}",
                path=path,
            )
        if e.kind != "symlink" and mode != e.mode:
            raise MfpsecError(
                ErrorCode.FIRMWARE_TREE_MISMATCH,
                reason=f"mode {mode:o}, the manifest says {e.mode:o}",
                path=path,
            )
        if e.kind == "symlink" and target != e.target:
            raise MfpsecError(
                ErrorCode.FIRMWARE_TREE_MISMATCH, reason="symlink target differs", path=path
            )
