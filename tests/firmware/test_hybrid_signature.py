"""Hybrid firmware signatures (issue 30, CNSA 2.0): a trust store that holds an
ML-DSA-87 root requires an ML-DSA-87 signature beside the classical one, over the same
manifest bytes; stripping either, or taking one from another manifest, is refused. A
trust store without a post-quantum root keeps taking ECDSA-only bundles (and hybrid ones,
ignoring the half nothing there vouches for). Also through the bundle directory and the
archive the device receives."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from pkcs11 import Attribute, KeyType
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from mfpsecd.auth.backends.pkcs11_card import Pkcs11Card
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.firmware import archive as fw_archive
from mfpsecd.firmware.backends.native_hasher import NativeTreeHasher
from mfpsecd.firmware.bundle import PostQuantumSigner, sign_bundle, verify_bundle, verify_header
from mfpsecd.firmware.model.manifest import Manifest
from mfpsecd.firmware.model.signature import ClockCheck, Signed, verify
from tests.support.firmware_pki import (
    NOW,
    PQ_ROOT,
    PQ_ROOT_KEY,
    PQ_SIGNER,
    PQ_SIGNER_KEY,
    ROOT,
    ROOT_KEY,
    SIGNER,
    SIGNER_KEY,
    make_cert,
    pem_of,
)
from tests.support.softhsm import MODULE, PIN, init_token, requires_softhsm, softhsm_env

__all__ = ["softhsm_env"]  # the fixture

A = b'{"format":"mfpsecd-firmware-manifest/1","version":"1.0"}'
B = b'{"format":"mfpsecd-firmware-manifest/1","version":"6.6"}'
BOTH = [ROOT, PQ_ROOT]


def _classical(raw: bytes) -> tuple[bytes, bytes]:
    return SIGNER_KEY.sign(raw, ec.ECDSA(hashes.SHA384())), pem_of(SIGNER)


def _pq(raw: bytes, key: mldsa.MLDSA87PrivateKey = PQ_SIGNER_KEY) -> Signed:
    return Signed(key.sign(raw), pem_of(PQ_SIGNER))


def _verify(
    raw: bytes, classical: tuple[bytes, bytes], pq: Signed | None, roots: list[x509.Certificate]
) -> x509.Certificate:
    return verify(
        raw,
        *classical,
        roots=roots,
        clock=ClockCheck.CHECK,
        now=NOW,
        post_quantum_signed=pq,
    )


def _refused(
    reason: str,
    raw: bytes,
    classical: tuple[bytes, bytes],
    pq: Signed | None,
    roots: list[x509.Certificate] = BOTH,
) -> None:
    with pytest.raises(MfpsecError) as info:
        _verify(raw, classical, pq, roots)
    assert info.value.code is ErrorCode.FIRMWARE_SIGNATURE_INVALID
    assert reason in str(info.value.params["reason"]), info.value.params


def test_a_hybrid_signature_verifies_against_a_hybrid_trust_store() -> None:
    assert _verify(A, _classical(A), _pq(A), BOTH) == SIGNER
    assert len(_pq(A).signature) == 4627  # ML-DSA-87 (FIPS 204)


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("F-1", "F-5")
def test_no_downgrade_by_stripping_or_mixing_signatures() -> None:
    # The ML-DSA-87 half stripped.
    _refused("an ML-DSA-87 signature is required", A, _classical(A), None)
    # The classical half stripped (empty), or replaced by the ML-DSA one.
    _refused("no signature", A, (b"", pem_of(SIGNER)), _pq(A))
    _refused("no signature", A, (_pq(A).signature, pem_of(PQ_SIGNER)), _pq(A))
    # Each half taken from another manifest.
    _refused("the ML-DSA-87 signature does not match", A, _classical(A), _pq(B))
    _refused("the signature does not match", A, _classical(B), _pq(A))
    # The ML-DSA half signed by a key that no post-quantum root vouches for.
    other = mldsa.MLDSA87PrivateKey.generate()
    _refused("does not match", A, _classical(A), _pq(A, other))
    stranger_root = make_cert("someone", other, "someone", other, ca=True)
    stranger = make_cert("someone signing", other, "someone", other, ca=False)
    _refused("not issued by a trusted", A, _classical(A), Signed(other.sign(A), pem_of(stranger)))
    # A classical certificate presented as the post-quantum signer, and the reverse.
    _refused("not issued by a trusted", A, _classical(A), Signed(_pq(A).signature, pem_of(SIGNER)))
    _refused("not issued by a trusted", A, (_classical(A)[0], pem_of(PQ_SIGNER)), _pq(A))
    assert stranger_root.subject != PQ_ROOT.subject


def test_only_ml_dsa_87_and_only_code_signing_certificates_are_taken() -> None:
    weak_key = mldsa.MLDSA65PrivateKey.generate()
    weak = make_cert("signing 65", weak_key, "MFP firmware root ML-DSA", PQ_ROOT_KEY, ca=False)
    _refused("not ML-DSA-87", A, _classical(A), Signed(weak_key.sign(A), pem_of(weak)))
    no_eku = make_cert(
        "signing no eku",
        PQ_SIGNER_KEY,
        "MFP firmware root ML-DSA",
        PQ_ROOT_KEY,
        ca=False,
        eku=False,
    )
    _refused(
        "not for code signing", A, _classical(A), Signed(PQ_SIGNER_KEY.sign(A), pem_of(no_eku))
    )


def test_the_migration_path_keeps_older_devices_and_bundles_working() -> None:
    # A device without a post-quantum root: ECDSA-only bundles, and hybrid ones.
    assert _verify(A, _classical(A), None, [ROOT]) == SIGNER
    assert _verify(A, _classical(A), _pq(A), [ROOT]) == SIGNER
    # Even a broken ML-DSA half is ignored there: nothing on that device vouches for it.
    assert _verify(A, _classical(A), _pq(B), [ROOT]) == SIGNER
    # A trust store of post-quantum roots alone still needs the classical signature.
    _refused("no classical firmware root", A, _classical(A), _pq(A), roots=[PQ_ROOT])


def _bundle(tmp: Path, *, hybrid: bool) -> Path:
    bundle = tmp / ("hybrid" if hybrid else "classical")
    (bundle / "tree" / "bin").mkdir(parents=True)
    (bundle / "tree" / "bin" / "app").write_bytes(b"firmware" * 1000)
    sign_bundle(
        bundle,
        key=SIGNER_KEY,
        certificate_pem=pem_of(SIGNER),
        hasher=NativeTreeHasher(),
        product="mfp",
        version="2.0",
        epoch=3,
        models=["mfp-9000"],
        created="2026-11-22T00:00:00Z",
        post_quantum=PostQuantumSigner(PQ_SIGNER_KEY, pem_of(PQ_SIGNER)) if hybrid else None,
    )
    return bundle


def _verify_bundle(bundle: Path, roots: list[x509.Certificate]) -> None:
    verify_bundle(
        bundle,
        roots=roots,
        hasher=NativeTreeHasher(),
        model="mfp-9000",
        minimum_epoch=1,
        clock=ClockCheck.CHECK,
        now=NOW,
    )


def test_bundles_and_archives_carry_both_signatures(tmp_path: Path) -> None:
    hybrid, classical = _bundle(tmp_path, hybrid=True), _bundle(tmp_path, hybrid=False)
    _verify_bundle(hybrid, BOTH)
    _verify_bundle(classical, [ROOT])
    with pytest.raises(MfpsecError, match="ML-DSA-87 signature is required"):
        _verify_bundle(classical, BOTH)
    # One half of the pair removed from a bundle: refused, not taken as classical-only.
    (hybrid / "signer.mldsa.pem").rename(tmp_path / "moved.pem")
    with pytest.raises(MfpsecError) as info:
        _verify_bundle(hybrid, BOTH)
    assert info.value.code is ErrorCode.FIRMWARE_SIGNATURE_INVALID
    (tmp_path / "moved.pem").rename(hybrid / "signer.mldsa.pem")

    out = io.BytesIO()
    fw_archive.write_archive(hybrid, out)

    def header(raw: bytes, sig: bytes, pem: bytes, pq: Signed | None) -> Manifest:
        return verify_header(
            raw,
            sig,
            pem,
            roots=BOTH,
            model="mfp-9000",
            minimum_epoch=1,
            clock=ClockCheck.CHECK,
            now=NOW,
            post_quantum_signed=pq,
        )[0]

    out.seek(0)
    m = fw_archive.extract(out, tmp_path / "unpacked", header, max_bytes=1 << 20)
    assert m.version == "2.0"
    _verify_bundle(tmp_path / "unpacked", BOTH)  # the slot as written verifies at boot too

    # The classical archive on a hybrid device: refused before the tree is read.
    out = io.BytesIO()
    fw_archive.write_archive(classical, out)
    out.seek(0)
    with pytest.raises(MfpsecError, match="ML-DSA-87 signature is required"):
        fw_archive.extract(out, tmp_path / "refused", header, max_bytes=1 << 20)
    assert not (tmp_path / "refused" / "tree").exists()


def test_the_signing_tool_makes_a_hybrid_archive(tmp_path: Path) -> None:
    """`mfpsecd fw-sign --pq-key --pq-certificate`: the vendor's command line."""
    files = {
        "signer.key": SIGNER_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "signer.pem": pem_of(SIGNER),
        "mldsa.key": PQ_SIGNER_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "signer.mldsa.pem": pem_of(PQ_SIGNER),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app").write_bytes(b"firmware")
    sign = [
        sys.executable,
        "-m",
        "mfpsecd.daemon.main",
        "fw-sign",
        "--key",
        str(tmp_path / "signer.key"),
        "--certificate",
        str(tmp_path / "signer.pem"),
        "--product",
        "mfp",
        "--version",
        "3.0",
        "--epoch",
        "4",
        "--model",
        "mfp-9000",
        "--tree",
        str(tmp_path / "src"),
    ]
    r = subprocess.run(
        [*sign, "--pq-key", str(tmp_path / "mldsa.key"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode != 0 and "--pq-key and --pq-certificate go together" in r.stderr
    r = subprocess.run(
        [
            *sign,
            "--pq-key",
            str(tmp_path / "mldsa.key"),
            "--pq-certificate",
            str(tmp_path / "signer.mldsa.pem"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    _verify_bundle(tmp_path / "out", BOTH)
    assert len((tmp_path / "out" / "manifest.mldsa.sig").read_bytes()) == 4627


@requires_softhsm
def test_the_signing_key_can_stay_in_an_hsm(tmp_path: Path, softhsm_env: Path) -> None:
    """`fw-sign --key pkcs11:...`: an ECDSA P-384 key generated in a SoftHSM2 token, not
    extractable, signs the manifest inside the token; the bundle verifies against the
    firmware root that issued its certificate. A wrong PIN, a key that is not there, a
    PIN on the command line and a certificate of another key are refused, nothing
    signed."""
    label = f"fw-{tmp_path.name[-8:]}"
    init_token(label)
    lib = Pkcs11Card(MODULE)._lib()
    lib.reinitialize()
    with lib.get_token(token_label=label).open(rw=True, user_pin=PIN) as s:
        params = s.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters("secp384r1")},
            local=True,
        )
        pub, priv = params.generate_keypair(store=True, label="fw-signer")
        assert priv[Attribute.EXTRACTABLE] is False and priv[Attribute.SENSITIVE] is True
        public = serialization.load_der_public_key(encode_ec_public_key(pub))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert = make_cert("HSM firmware signing", SIGNER_KEY, "MFP firmware root", ROOT_KEY, ca=False)
    hsm_cert = x509.CertificateBuilder(
        cert.issuer,
        cert.subject,
        public,
        cert.serial_number,
        NOW - dt.timedelta(days=1),
        NOW + dt.timedelta(days=365),
        list(cert.extensions),
    ).sign(ROOT_KEY, hashes.SHA384())
    (tmp_path / "hsm.pem").write_bytes(pem_of(hsm_cert))
    (tmp_path / "pin").write_text(PIN)
    (tmp_path / "bad-pin").write_text("000000")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app").write_bytes(b"firmware")

    def fw_sign(uri: str, certificate: Path, out: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable, "-m", "mfpsecd.daemon.main", "fw-sign",
                "--key", uri, "--certificate", str(certificate),
                "--product", "mfp", "--version", "4.0", "--epoch", "5",
                "--model", "mfp-9000", "--tree", str(tmp_path / "src"), str(tmp_path / out),
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    def uri(pin: str = "pin", obj: str = "fw-signer") -> str:
        return (
            f"pkcs11:token={label};object={obj}?module-path={MODULE}"
            f"&pin-source=file:{tmp_path / pin}"
        )

    for bad, why in (
        (uri(pin="bad-pin"), "refused the PIN"),
        (uri(obj="nothing"), "no single such key"),
        (
            f"pkcs11:token={label};object=fw-signer?module-path={MODULE}&pin-value={PIN}",
            "pin-value",
        ),
    ):
        r = fw_sign(bad, tmp_path / "hsm.pem", "refused")
        assert r.returncode != 0 and why in r.stderr, (why, r.stderr)
        assert not (tmp_path / "refused" / "manifest.sig").exists()
    r = (
        fw_sign(uri(), tmp_path / "other.pem", "mismatch")
        if ((tmp_path / "other.pem").write_bytes(pem_of(SIGNER)) or True)
        else None
    )
    assert r is not None and r.returncode != 0 and "does not match its certificate" in r.stderr
    r = fw_sign(uri(), tmp_path / "hsm.pem", "out")
    assert r.returncode == 0, r.stderr
    _verify_bundle(tmp_path / "out", [ROOT])
