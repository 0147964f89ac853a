"""Firmware bundles: signing (the vendor side) and verification (SPEC F-1, F-2, F-4).

A bundle is a directory: `manifest.json` (the canonical manifest bytes), `manifest.sig`
(the signature over them), `signer.pem` (the vendor's signing certificate), for a hybrid
signature `manifest.mldsa.sig` and `signer.mldsa.pem` (ML-DSA-87 over the same bytes,
and its certificate), and `tree/` (the firmware). Verification goes signatures → parse
→ model and epoch → the tree's entries (nothing extra, missing or changed; links never
followed) → every file's
SHA-256 in parallel, stopping at the first mismatch. Each step fails closed with its own
typed error, before the next step looks at anything.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.firmware.model import manifest as fw_manifest
from mfpsecd.firmware.model import signature as fw_signature
from mfpsecd.firmware.ports import TreeHasher

MANIFEST, SIGNATURE, SIGNER, TREE = "manifest.json", "manifest.sig", "signer.pem", "tree"
PQ_SIGNATURE, PQ_SIGNER = "manifest.mldsa.sig", "signer.mldsa.pem"
MAX_SIGNER_PEM = 64 * 1024

_REASONS = {
    "mismatch": "content differs from the manifest",
    "size": "size differs",
    "not-regular": "not a regular file",
    "missing": "missing",
    "escapes": "path leaves the tree",
    "symlink": "a symbolic link",
    "io": "unreadable",
}


@dataclass(frozen=True)
class VerifiedImage:
    manifest: fw_manifest.Manifest
    digest: bytes  # of the signed manifest bytes: what is extended into the PCR
    signer: str  # the signing certificate's subject
    files: int
    bytes: int


def _read(path: Path, limit: int) -> bytes:
    """A bundle file: a regular file (no link followed), at most limit bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            raise OSError(f"{path.name} is not a regular file of at most {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def walk(tree: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under tree as found (path → kind, mode, link target); nothing
    followed. The tree itself must be a real directory."""
    if not stat.S_ISDIR(os.lstat(tree).st_mode):
        raise MfpsecError(
            ErrorCode.FIRMWARE_TREE_MISMATCH, reason="the tree is not a directory", path=""
        )
    found: dict[str, tuple[str, int, str]] = {}
    for top, dirs, files in os.walk(tree, followlinks=False):
        for name in (*dirs, *files):
            full = os.path.join(top, name)
            rel = os.path.relpath(full, tree)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("symlink", stat.S_IMODE(st.st_mode), os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            elif stat.S_ISREG(st.st_mode):
                found[rel] = ("file", stat.S_IMODE(st.st_mode), "")
            else:
                found[rel] = ("other", stat.S_IMODE(st.st_mode), "")
    return found


def verify_header(
    raw: bytes,
    signature: bytes,
    signer_pem: bytes,
    *,
    roots: list[x509.Certificate],
    model: str,
    minimum_epoch: int,
    clock: fw_signature.ClockCheck,
    now: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList] = (),
    post_quantum_signed: fw_signature.Signed | None = None,
) -> tuple[fw_manifest.Manifest, x509.Certificate]:
    """Signatures first, then the manifest is parsed and checked against this device."""
    signer = fw_signature.verify(
        raw,
        signature,
        signer_pem,
        roots=roots,
        clock=clock,
        now=now,
        crls=crls,
        post_quantum_signed=post_quantum_signed,
    )
    m = fw_manifest.parse(raw)  # only now, the bytes being the vendor's
    if model not in m.models:
        raise MfpsecError(ErrorCode.FIRMWARE_WRONG_MODEL, model=model)
    if m.epoch < minimum_epoch:
        raise MfpsecError(ErrorCode.FIRMWARE_ROLLBACK, epoch=m.epoch, minimum=minimum_epoch)
    return m, signer


def verify_bundle(
    bundle: Path,
    *,
    roots: list[x509.Certificate],
    hasher: TreeHasher,
    model: str,
    minimum_epoch: int,
    clock: fw_signature.ClockCheck,
    now: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList] = (),
) -> VerifiedImage:
    try:
        raw = _read(bundle / MANIFEST, fw_manifest.MAX_MANIFEST_BYTES)
    except OSError as exc:
        raise MfpsecError(
            ErrorCode.FIRMWARE_MANIFEST_INVALID, reason=f"manifest: {exc}", path=""
        ) from None
    try:
        signature = _read(bundle / SIGNATURE, fw_signature.MAX_SIGNATURE_BYTES)
        signer_pem = _read(bundle / SIGNER, MAX_SIGNER_PEM)
        pq = read_post_quantum(bundle)
    except OSError as exc:
        raise MfpsecError(ErrorCode.FIRMWARE_SIGNATURE_INVALID, reason=str(exc)) from None
    m, signer = verify_header(
        raw,
        signature,
        signer_pem,
        roots=roots,
        model=model,
        minimum_epoch=minimum_epoch,
        clock=clock,
        now=now,
        crls=crls,
        post_quantum_signed=pq,
    )
    tree = bundle / TREE
    try:
        fw_manifest.compare(m, walk(tree))
    except OSError as exc:
        raise MfpsecError(ErrorCode.FIRMWARE_TREE_MISMATCH, reason=str(exc), path="") from None
    files = [(e.path, e.size, bytes.fromhex(e.sha256)) for e in m.entries if e.kind == "file"]
    for h in hasher.hash(tree, files, stop_early=True):
        if h.status not in ("ok", "skipped"):
            raise MfpsecError(
                ErrorCode.FIRMWARE_TREE_MISMATCH, reason=_REASONS[h.status], path=h.path
            )
    return VerifiedImage(
        m,
        fw_manifest.digest(raw),
        signer.subject.rfc4514_string(),
        len(files),
        sum(f[1] for f in files),
    )


def _check_pair(raw: bytes, signature: bytes, certificate_pem: bytes) -> None:
    """The signature verifies with the certificate that will travel with it: a key and a
    certificate that do not belong together are found by the signer, not the devices."""
    try:
        public = x509.load_pem_x509_certificate(certificate_pem).public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, raw, ec.ECDSA(hashes.SHA384()))
        elif isinstance(public, ed25519.Ed25519PublicKey | mldsa.MLDSA87PublicKey):
            public.verify(signature, raw)
        else:
            raise InvalidSignature
    except (ValueError, InvalidSignature):
        raise MfpsecError(
            ErrorCode.FIRMWARE_SIGNATURE_INVALID,
            reason="the signing key does not match its certificate",
        ) from None


def read_post_quantum(bundle: Path) -> fw_signature.Signed | None:
    """The ML-DSA-87 signature and its certificate, when the bundle carries them (both or
    neither: one without the other is a damaged bundle, OSError)."""
    sig, signer = bundle / PQ_SIGNATURE, bundle / PQ_SIGNER
    if not os.path.lexists(sig) and not os.path.lexists(signer):
        return None
    return fw_signature.Signed(
        _read(sig, fw_signature.ML_DSA_87_SIGNATURE_BYTES), _read(signer, MAX_SIGNER_PEM)
    )


# A key in hand, or a signer that holds it elsewhere (a PKCS#11 token): raw -> signature.
SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | Callable[[bytes], bytes]


@dataclass(frozen=True)
class PostQuantumSigner:
    """The ML-DSA-87 half of a hybrid signature: its key and certificate (PEM)."""

    key: mldsa.MLDSA87PrivateKey
    certificate_pem: bytes


def sign_bundle(
    bundle: Path,
    *,
    key: SigningKey,
    certificate_pem: bytes,
    hasher: TreeHasher,
    product: str,
    version: str,
    epoch: int,
    models: list[str],
    created: str,
    post_quantum: PostQuantumSigner | None = None,
) -> bytes:
    """The vendor side: a manifest of bundle/tree as it is, signed (with a hybrid
    signature when post_quantum is given). → its digest."""
    tree = bundle / TREE
    found = walk(tree)
    files = sorted(p for p, (kind, _, _) in found.items() if kind == "file")
    hashed = {h.path: h for h in hasher.hash(tree, [(p, -1, None) for p in files], stop_early=True)}
    entries = []
    for path, (kind, mode, target) in sorted(found.items()):
        if kind == "file":
            h = hashed[path]
            if h.status != "ok":
                raise MfpsecError(
                    ErrorCode.FIRMWARE_TREE_MISMATCH, reason=_REASONS[h.status], path=path
                )
            entries.append(fw_manifest.Entry(path, mode=mode, sha256=h.digest.hex(), size=h.size))
        elif kind == "dir":
            entries.append(fw_manifest.Entry(path, kind="dir", mode=mode))
        elif kind == "symlink":
            entries.append(fw_manifest.Entry(path, kind="symlink", mode=mode, target=target))
        else:
            raise MfpsecError(
                ErrorCode.FIRMWARE_TREE_MISMATCH,
                reason="neither file, directory nor link",
                path=path,
            )
    m = fw_manifest.Manifest(
        format=fw_manifest.FORMAT,
        product=product,
        version=version,
        epoch=epoch,
        models=models,
        created=created,
        entries=entries,
    )
    fw_manifest.check(m)
    raw = fw_manifest.canonical(m)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(raw, ec.ECDSA(hashes.SHA384()))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(raw)
    else:
        signature = key(raw)
    _check_pair(raw, signature, certificate_pem)
    members = [(MANIFEST, raw), (SIGNATURE, signature), (SIGNER, certificate_pem)]
    if post_quantum is not None:
        pq_signature = post_quantum.key.sign(raw)
        _check_pair(raw, pq_signature, post_quantum.certificate_pem)
        members += [(PQ_SIGNATURE, pq_signature), (PQ_SIGNER, post_quantum.certificate_pem)]
    for name, data in members:
        (bundle / name).write_bytes(data)
    return fw_manifest.digest(raw)
