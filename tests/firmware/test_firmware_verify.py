"""Firmware bundles signed and verified on the real engines, and a corpus of more than
1,000 tampered bundles (F-1, F-2): every one refused with the right typed error, the
untouched bundle accepted."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.firmware import bundle as fw
from mfpsecd.firmware.model import manifest as fw_manifest
from mfpsecd.firmware.model.signature import ClockCheck
from tests.support.firmware_bundle import HASHER, MODEL, make_tree, sign_tree
from tests.support.firmware_pki import (
    NOW,
    ROOT,
    SIGNER_KEY,
    make_cert,
    pem_of,
)

E = ErrorCode


def _verify(bundle: Path, minimum_epoch: int = 3) -> fw.VerifiedImage:
    return fw.verify_bundle(
        bundle,
        roots=[ROOT],
        hasher=HASHER,
        model=MODEL,
        minimum_epoch=minimum_epoch,
        clock=ClockCheck.CHECK,
        now=NOW,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("pristine")
    make_tree(bundle / "tree")
    sign_tree(bundle)
    return bundle


def test_a_signed_bundle_verifies(pristine: Path) -> None:
    image = _verify(pristine)
    assert image.files == 16 and image.manifest.epoch == 3
    assert image.digest == fw_manifest.digest((pristine / fw.MANIFEST).read_bytes())
    assert "MFP firmware signing 2026" in image.signer


Mutation = Callable[[Path, random.Random], ErrorCode]


def _files(bundle: Path) -> list[Path]:
    return sorted(p for p in (bundle / "tree").rglob("*") if p.is_file() and not p.is_symlink())


def _flip(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def flip_file_bit(b: Path, rng: random.Random) -> ErrorCode:
    _flip(rng.choice([p for p in _files(b) if p.stat().st_size > 0]), rng)
    return E.FIRMWARE_TREE_MISMATCH


def truncate_file(b: Path, rng: random.Random) -> ErrorCode:
    f = rng.choice([p for p in _files(b) if p.stat().st_size > 0])
    os.truncate(f, rng.randrange(f.stat().st_size))
    return E.FIRMWARE_TREE_MISMATCH


def add_file(b: Path, rng: random.Random) -> ErrorCode:
    (b / "tree" / rng.choice(["bin", "lib", "etc", "."]) / f"extra{rng.randrange(99)}").write_bytes(
        b"payload"
    )
    return E.FIRMWARE_TREE_MISMATCH


def remove_file(b: Path, rng: random.Random) -> ErrorCode:
    rng.choice(_files(b)).unlink()
    return E.FIRMWARE_TREE_MISMATCH


def rename_file(b: Path, rng: random.Random) -> ErrorCode:
    f = rng.choice(_files(b))
    f.rename(f.with_name(f.name + rng.choice(["x", ".bak", "_"])))
    return E.FIRMWARE_TREE_MISMATCH


def change_mode(b: Path, rng: random.Random) -> ErrorCode:
    f = rng.choice(_files(b))
    f.chmod(f.stat().st_mode & 0o777 ^ rng.choice([0o100, 0o020, 0o002, 0o111]))
    return E.FIRMWARE_TREE_MISMATCH


def symlink_trick(b: Path, rng: random.Random) -> ErrorCode:
    kind = rng.randrange(4)
    if kind == 0:  # a file replaced by a link to something outside
        f = rng.choice(_files(b))
        f.unlink()
        f.symlink_to(rng.choice(["/etc/passwd", "../../../../etc/shadow", "/proc/self/mem"]))
    elif kind == 1:  # a directory replaced by a link to a copy elsewhere
        d = b / "tree" / "etc"
        shutil.move(d, b / "elsewhere")
        d.symlink_to(b / "elsewhere")
    elif kind == 2:  # the listed link pointed elsewhere
        link = b / "tree" / "lib" / "libmfp.so"
        link.unlink()
        link.symlink_to(rng.choice(["/lib/x86_64-linux-gnu/libc.so.6", "f2", "../bin/f0"]))
    else:  # the whole tree a link
        shutil.move(b / "tree", b / "real")
        (b / "tree").symlink_to(b / "real")
    return E.FIRMWARE_TREE_MISMATCH


def flip_manifest_bit(b: Path, rng: random.Random) -> ErrorCode:
    _flip(b / fw.MANIFEST, rng)
    return E.FIRMWARE_SIGNATURE_INVALID


def flip_signature_bit(b: Path, rng: random.Random) -> ErrorCode:
    _flip(b / fw.SIGNATURE, rng)
    return E.FIRMWARE_SIGNATURE_INVALID


_ROGUE_ROOT_KEY = ec.generate_private_key(ec.SECP384R1())
_ROGUE_KEY = ec.generate_private_key(ec.SECP384R1())
_ROGUE = make_cert(
    "MFP firmware signing 2026", _ROGUE_KEY, "MFP firmware root", _ROGUE_ROOT_KEY, ca=False
)


def untrusted_signer(b: Path, rng: random.Random) -> ErrorCode:
    if rng.random() < 0.5:  # the attacker's own key, certificate from another root
        sign_tree(b, key=_ROGUE_KEY, cert=pem_of(_ROGUE))
    else:  # the vendor's certificate, the attacker's key (the vendor's tool refuses to
        # make such a bundle: the attacker writes the signature file by hand)
        sign_tree(b)
        raw = (b / "manifest.json").read_bytes()
        (b / "manifest.sig").write_bytes(_ROGUE_KEY.sign(raw, ec.ECDSA(hashes.SHA384())))
    return E.FIRMWARE_SIGNATURE_INVALID


def older_epoch(b: Path, rng: random.Random) -> ErrorCode:
    sign_tree(b, epoch=rng.randrange(3))  # a valid, older firmware: anti-rollback
    return E.FIRMWARE_ROLLBACK


def other_model(b: Path, rng: random.Random) -> ErrorCode:
    sign_tree(b, models=[rng.choice(["C250i", "C450i", "bizhub-9"])])
    return E.FIRMWARE_WRONG_MODEL


def signed_but_malicious(b: Path, rng: random.Random) -> ErrorCode:
    """The vendor key signed a manifest that breaks the rules (an insider, a build
    mistake): still refused."""
    raw = (b / fw.MANIFEST).read_bytes()
    bad = rng.choice(['"path":"../../etc/cron.d/x"', '"path":"/etc/passwd"', '"path":"bin//f0"'])
    raw = raw.replace(b'"path":"bin/f0"', bad.encode(), 1)
    (b / fw.MANIFEST).write_bytes(raw)
    (b / fw.SIGNATURE).write_bytes(SIGNER_KEY.sign(raw, ec.ECDSA(hashes.SHA384())))
    return E.FIRMWARE_MANIFEST_INVALID


MUTATIONS: list[Mutation] = [
    flip_file_bit,
    truncate_file,
    add_file,
    remove_file,
    rename_file,
    change_mode,
    symlink_trick,
    flip_manifest_bit,
    flip_signature_bit,
    untrusted_signer,
    older_epoch,
    other_model,
    signed_but_malicious,
]


@pytest.mark.sfr("FPT_TUD_EXT.1")
@pytest.mark.spec("F-1", "F-4", "F-5")
def test_a_corpus_of_1000_tampered_bundles_is_refused(pristine: Path, tmp_path: Path) -> None:
    rng = random.Random(20261122)
    counts: dict[str, int] = {}
    for i in range(1040):
        mutate = MUTATIONS[i % len(MUTATIONS)]
        bundle = tmp_path / f"b{i % 4}"
        if bundle.exists() or bundle.is_symlink():
            shutil.rmtree(bundle)
        shutil.copytree(pristine, bundle, symlinks=True)
        want = mutate(bundle, rng)
        with pytest.raises(MfpsecError) as info:
            _verify(bundle)
        assert info.value.code is want, (mutate.__name__, i, info.value)
        counts[mutate.__name__] = counts.get(mutate.__name__, 0) + 1
        shutil.rmtree(bundle)
    assert sum(counts.values()) >= 1000 and len(counts) == len(MUTATIONS)
    _verify(pristine)  # and the untouched one still passes


def test_dates_are_checked_at_update_not_at_boot(pristine: Path) -> None:
    later = NOW + dt.timedelta(days=800)
    with pytest.raises(MfpsecError) as info:
        fw.verify_bundle(
            pristine,
            roots=[ROOT],
            hasher=HASHER,
            model=MODEL,
            minimum_epoch=3,
            clock=ClockCheck.CHECK,
            now=later,
        )
    assert info.value.code is E.FIRMWARE_SIGNATURE_INVALID
    assert fw.verify_bundle(
        pristine,
        roots=[ROOT],
        hasher=HASHER,
        model=MODEL,
        minimum_epoch=3,
        clock=ClockCheck.IGNORE,
        now=later,
    )
