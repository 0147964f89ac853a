"""Firmware bundles for the tests: a small tree of files, signed by the test PKI's signer
on the real hashing engine, and packed as an update archive."""

from __future__ import annotations

import random
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.firmware import archive as fw_archive
from mfpsecd.firmware import bundle as fw
from mfpsecd.firmware.backends.native_hasher import NativeTreeHasher
from tests.support.firmware_pki import SIGNER, SIGNER_KEY, pem_of

HASHER = NativeTreeHasher(2)
MODEL = "C300i"


def make_tree(tree: Path) -> None:
    rng = random.Random(7)
    for i in range(16):
        path = tree / f"{['bin', 'lib', 'share/fonts', 'etc'][i % 4]}/f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.choice([0, 1, 300, 5000, 70000])))
        path.chmod(0o755 if i % 4 == 0 else 0o644)
    (tree / "lib" / "libmfp.so").symlink_to("f1")


def sign_tree(
    bundle: Path,
    *,
    epoch: int = 3,
    models: list[str] | None = None,
    key: ec.EllipticCurvePrivateKey = SIGNER_KEY,
    cert: bytes | None = None,
) -> bytes:
    return fw.sign_bundle(
        bundle,
        key=key,
        certificate_pem=cert or pem_of(SIGNER),
        hasher=HASHER,
        product="mfp-controller",
        version=f"2.{epoch}.0",
        epoch=epoch,
        models=models or [MODEL, "C400i"],
        created="2026-11-22T00:00:00Z",
    )


def make_bundle(
    root: Path,
    name: str,
    *,
    epoch: int,
    models: list[str] | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    cert: bytes | None = None,
) -> Path:
    """A signed bundle directory and its archive (root/name.mfw)."""
    bundle = root / name
    make_tree(bundle / "tree")
    (bundle / "tree" / "etc" / "version").write_text(f"{name} epoch {epoch}\n")
    kwargs = {} if key is None else {"key": key, "cert": cert}
    sign_tree(bundle, epoch=epoch, models=models, **kwargs)  # type: ignore[arg-type]
    archive = root / f"{name}.mfw"
    with archive.open("wb") as f:
        fw_archive.write_archive(bundle, f)
    return archive
