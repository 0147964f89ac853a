"""Firmware bundle archives: one file (a POSIX tar) carrying a bundle to the device.

The signing tool writes the members in a fixed order: `manifest.json`, `manifest.sig`,
`signer.pem`, for a hybrid signature `manifest.mldsa.sig` and `signer.mldsa.pem`, then
`tree` and its entries, parents before children. The reader takes the header members,
has the signatures and the manifest checked before anything else is read,
and then admits only what the signed manifest lists, of the kind and size it lists, up to
the slot's capacity. Files are created exclusively and flushed; directory modes are
applied last and symbolic links created last, so nothing extracted can redirect a later
write. The extracted bundle is then verified in full like any other (verify_bundle).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from mfpsecd.base.durable import fsync_dir, write_new
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.firmware.bundle import (
    MANIFEST,
    MAX_SIGNER_PEM,
    PQ_SIGNATURE,
    PQ_SIGNER,
    SIGNATURE,
    SIGNER,
    TREE,
    walk,
)
from mfpsecd.firmware.model import manifest as fw_manifest
from mfpsecd.firmware.model import signature as fw_signature

HEADER = (MANIFEST, SIGNATURE, SIGNER)
POST_QUANTUM = (PQ_SIGNATURE, PQ_SIGNER)  # present together, right after HEADER, or absent
_HEADER_LIMITS = {
    MANIFEST: fw_manifest.MAX_MANIFEST_BYTES,
    SIGNATURE: fw_signature.MAX_SIGNATURE_BYTES,
    SIGNER: MAX_SIGNER_PEM,
    PQ_SIGNATURE: fw_signature.ML_DSA_87_SIGNATURE_BYTES,
    PQ_SIGNER: MAX_SIGNER_PEM,
}
_COPY = 1 << 20

HeaderCheck = Callable[[bytes, bytes, bytes, fw_signature.Signed | None], fw_manifest.Manifest]


def _invalid(reason: str) -> MfpsecError:
    return MfpsecError(ErrorCode.FIRMWARE_BUNDLE_INVALID, reason=reason)


def write_archive(bundle: Path, out: BinaryIO) -> None:
    """The signed bundle directory as an archive, in the order the reader expects."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        hybrid = (bundle / PQ_SIGNATURE).exists()
        for name in HEADER + (POST_QUANTUM if hybrid else ()):
            tar.add(bundle / name, arcname=name, recursive=False, filter=_plain)
        tar.add(bundle / TREE, arcname=TREE, recursive=False, filter=_plain)
        for rel in sorted(walk(bundle / TREE)):
            tar.add(bundle / TREE / rel, arcname=f"{TREE}/{rel}", recursive=False, filter=_plain)


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Ownership and times are the device's business, not the vendor build host's."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo, limit: int) -> bytes:
    if not info.isreg() or info.size > limit:
        raise _invalid(f"{info.name}: not a regular file of at most {limit} bytes")
    f = tar.extractfile(info)
    assert f is not None
    data = f.read()
    if len(data) != info.size:
        raise _invalid(f"{info.name}: truncated")
    return data


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    try:
        yield from tar
    except tarfile.TarError as exc:
        raise _invalid(f"not a bundle archive: {exc}") from None


def extract(
    source: BinaryIO, dest: Path, check_header: HeaderCheck, *, max_bytes: int
) -> fw_manifest.Manifest:
    """Read an archive from source into dest (a new directory) → the signed manifest.

    check_header verifies the signature and the manifest (raising their typed errors);
    nothing after the three header members is read before it has passed."""
    try:
        tar = tarfile.open(fileobj=source, mode="r|")  # noqa: SIM115 (closed by the with below)
    except tarfile.TarError as exc:
        raise _invalid(f"not a bundle archive: {exc}") from None
    dest.mkdir(mode=0o700)
    try:
        return _extract(tar, dest, check_header, max_bytes)
    except tarfile.TarError as exc:
        # Stream mode reads a member's data only when it is copied: a cut inside a member
        # surfaces here, not while listing the members.
        raise _invalid(f"damaged or truncated archive: {exc}") from None


def _extract(
    tar: tarfile.TarFile, dest: Path, check_header: HeaderCheck, max_bytes: int
) -> fw_manifest.Manifest:
    with tar:
        members = _members(tar)
        header: dict[str, bytes] = {}
        for name in HEADER:
            info = next(members, None)
            if info is None or info.name != name:
                raise _invalid(f"expected {name} as member {len(header) + 1}")
            header[name] = _read_member(tar, info, _HEADER_LIMITS[name])
        first = next(members, None)
        if first is not None and first.name == PQ_SIGNATURE:
            header[PQ_SIGNATURE] = _read_member(tar, first, _HEADER_LIMITS[PQ_SIGNATURE])
            info = next(members, None)
            if info is None or info.name != PQ_SIGNER:
                raise _invalid(f"expected {PQ_SIGNER} after {PQ_SIGNATURE}")
            header[PQ_SIGNER] = _read_member(tar, info, _HEADER_LIMITS[PQ_SIGNER])
            first = next(members, None)
        pq = (
            fw_signature.Signed(header[PQ_SIGNATURE], header[PQ_SIGNER])
            if PQ_SIGNATURE in header
            else None
        )
        m = check_header(header[MANIFEST], header[SIGNATURE], header[SIGNER], pq)
        total = sum(e.size for e in m.entries if e.kind == "file")
        if total > max_bytes:
            raise _invalid(f"the firmware holds {total} bytes, a slot {max_bytes}")
        try:
            for name, data in header.items():
                write_new(dest / name, data)
            _extract_tree(tar, first, members, dest / TREE, {e.path: e for e in m.entries})
            fsync_dir(dest)
        except OSError as exc:
            raise _invalid(f"cannot be written as it is: {exc}") from None
    return m


def _extract_tree(
    tar: tarfile.TarFile,
    first: tarfile.TarInfo | None,
    members: Iterator[tarfile.TarInfo],
    tree: Path,
    entries: dict[str, fw_manifest.Entry],
) -> None:
    if first is None or first.name != TREE or not first.isdir():
        raise _invalid(f"expected the directory {TREE} after the signature")
    tree.mkdir(mode=0o700)
    seen: set[str] = set()
    dirs: list[tuple[Path, int]] = []
    links: list[tuple[Path, str]] = []
    for info in members:
        rel = info.name.removeprefix(TREE + "/") if info.name.startswith(TREE + "/") else ""
        e = entries.get(rel)
        if e is None or rel in seen:
            why = "listed twice" if rel in seen else "not in the manifest"
            raise _invalid(f"{info.name}: {why}")
        seen.add(rel)
        kind = (
            "file"
            if info.isreg()
            else "dir"
            if info.isdir()
            else ("symlink" if info.issym() else "other")
        )
        if kind != e.kind:
            raise _invalid(f"{info.name}: a {kind}, the manifest lists a {e.kind}")
        path = tree / rel
        if kind == "dir":
            path.mkdir(mode=0o700)
            dirs.append((path, e.mode))
        elif kind == "symlink":
            if info.linkname != e.target:
                raise _invalid(f"{info.name}: link target differs from the manifest")
            links.append((path, e.target))
        else:
            if info.size != e.size:
                raise _invalid(f"{info.name}: {info.size} bytes, the manifest lists {e.size}")
            _write_file(tar, info, path, e.mode)
    missing = entries.keys() - seen
    if missing:
        raise _invalid(f"{TREE}/{min(missing)}: listed in the manifest, not in the archive")
    for path, target in links:
        os.symlink(target, path)
    for path, mode in [*reversed(dirs), (tree, 0o755)]:  # children before parents
        fsync_dir(path)
        os.chmod(path, mode)


def _write_file(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path, mode: int) -> None:
    src = tar.extractfile(info)
    assert src is not None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        left = info.size
        while left:
            chunk = src.read(min(left, _COPY))
            if not chunk:
                raise _invalid(f"{info.name}: truncated")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            left -= len(chunk)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
