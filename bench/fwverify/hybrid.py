"""What hybrid (ECDSA P-384 + ML-DSA-87) firmware signatures add to a boot (issue 30).

Three views, each side by side in one run:
  signature   the check the boot verifier makes before it hashes a file: the manifest's
              signature(s) and certificate chain(s), in process, `checks` times per
              measurement: ECDSA only (a trust store without a post-quantum root) vs
              hybrid (a post-quantum root: both signatures, both chains)
  boot        the boot unit's command on the same 2,000-file tree, signed both ways
  openssl     one ML-DSA-87 verification of the very manifest signature: ours (the
              daemon's library, in process) vs `openssl pkeyutl -verify` (a process per
              check, as a boot script would run it), beside `openssl version` (what the
              process alone costs). Debian 12's openssl 3.0 has no ML-DSA: this needs an
              OpenSSL 3.5 or newer (MFPSEC_BENCH_OPENSSL, or on PATH); without one the
              view is left out and the results say so.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench import ROOT, Metrics, throughput
from mfpsecd.firmware.bundle import PostQuantumSigner
from mfpsecd.firmware.model import signature as fw_signature

CHECKS = 50  # signature checks per measurement: one is well under a millisecond
OPENSSL_CHECKS = 10  # processes per measurement
DEV = ROOT / "hw" / "sim-firmware"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(
    subject: str, key: mldsa.MLDSA87PrivateKey, issuer: str, issuer_key: mldsa.MLDSA87PrivateKey
) -> x509.Certificate:
    ca = subject == issuer
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, None)  # ML-DSA signs the message itself


class PostQuantumPki:
    """A bench-only ML-DSA-87 root and signer, beside the development ECDSA root."""

    def __init__(self, work: Path) -> None:
        root_key = mldsa.MLDSA87PrivateKey.generate()
        self.signer_key = mldsa.MLDSA87PrivateKey.generate()
        self.root = _certificate("bench PQ root", root_key, "bench PQ root", root_key)
        signer = _certificate("bench PQ signer", self.signer_key, "bench PQ root", root_key)
        self.root_pem = work / "pq-root.pem"
        self.root_pem.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        self.signer = PostQuantumSigner(
            self.signer_key, signer.public_bytes(serialization.Encoding.PEM)
        )
        self.signer_public = work / "pq-signer.pub.pem"
        self.signer_public.write_bytes(
            self.signer_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


class SignatureCheck:
    """The manifest check of a signed slot, as the boot verifier makes it."""

    def __init__(self, slot: Path, roots: list[x509.Certificate], hybrid: bool) -> None:
        self.raw = (slot / "manifest.json").read_bytes()
        self.signature = (slot / "manifest.sig").read_bytes()
        self.signer_pem = (slot / "signer.pem").read_bytes()
        self.roots = roots
        self.pq = (
            fw_signature.Signed(
                (slot / "manifest.mldsa.sig").read_bytes(),
                (slot / "signer.mldsa.pem").read_bytes(),
            )
            if hybrid
            else None
        )

    def ours(self) -> Metrics:
        now = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        for _ in range(CHECKS):
            fw_signature.verify(
                self.raw,
                self.signature,
                self.signer_pem,
                roots=self.roots,
                clock=fw_signature.ClockCheck.CHECK,
                now=now,
                post_quantum_signed=self.pq,
            )
        return throughput(len(self.raw) * CHECKS, time.perf_counter() - t0)


def dev_roots() -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate((DEV / "dev-root.pem").read_bytes())]


def dev_signer() -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((DEV / "dev-signer.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def openssl_env(binary: str) -> dict[str, str]:
    """A private OpenSSL build (PREFIX/bin/openssl) finds its own PREFIX/lib."""
    lib = Path(binary).resolve().parent.parent / "lib"
    env = dict(os.environ)
    if (lib / "libcrypto.so").exists():
        env["LD_LIBRARY_PATH"] = str(lib)
    return env


def openssl_with_mldsa() -> str | None:
    """An openssl that verifies ML-DSA-87: MFPSEC_BENCH_OPENSSL, else the one on PATH."""
    for candidate in (os.environ.get("MFPSEC_BENCH_OPENSSL"), shutil.which("openssl")):
        if not candidate:
            continue
        r = subprocess.run(
            [candidate, "list", "-signature-algorithms"],
            capture_output=True,
            text=True,
            check=False,
            env=openssl_env(candidate),
        )
        if r.returncode == 0 and "ML-DSA-87" in r.stdout:
            return candidate
    return None


class MlDsaVerify:
    """One ML-DSA-87 verification of the manifest's signature, ours and openssl's."""

    def __init__(self, slot: Path, public_pem: Path, openssl: str) -> None:
        self.manifest = slot / "manifest.json"
        self.signature = slot / "manifest.mldsa.sig"
        self.public_pem = public_pem
        self.openssl = openssl
        self.env = openssl_env(openssl)
        key = serialization.load_pem_public_key(public_pem.read_bytes())
        assert isinstance(key, mldsa.MLDSA87PublicKey)
        self.key = key

    def ours(self) -> Metrics:
        raw, sig = self.manifest.read_bytes(), self.signature.read_bytes()
        t0 = time.perf_counter()
        for _ in range(OPENSSL_CHECKS):
            self.key.verify(sig, raw)
        return throughput(len(raw) * OPENSSL_CHECKS, time.perf_counter() - t0)

    def pkeyutl(self) -> Metrics:
        argv = [
            self.openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(self.public_pem),
            "-rawin",
            "-in",
            str(self.manifest),
            "-sigfile",
            str(self.signature),
        ]
        t0 = time.perf_counter()
        for _ in range(OPENSSL_CHECKS):
            r = subprocess.run(argv, capture_output=True, text=True, check=False, env=self.env)
            assert r.returncode == 0 and "Signature Verified Successfully" in r.stdout, r
        size = self.manifest.stat().st_size * OPENSSL_CHECKS
        return throughput(size, time.perf_counter() - t0)

    def process_alone(self) -> Metrics:
        t0 = time.perf_counter()
        for _ in range(OPENSSL_CHECKS):
            subprocess.run([self.openssl, "version"], capture_output=True, check=True, env=self.env)
        size = self.manifest.stat().st_size * OPENSSL_CHECKS
        return throughput(size, time.perf_counter() - t0)
