"""The device identity (ECDSA P-256 in the TPM): its public key as a self-signed
certificate and as a PKCS#10 request, both signed inside the TPM.

`cryptography` builds certificates only with a private key in hand, so the to-be-signed
part is built with a throwaway key (same algorithm, so the same TBS bytes), signed by the
TPM, and the outer DER assembled here.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mfpsecd.base.clock import Clock
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.chain_rows import fingerprint

# AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758), no parameters.
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
VALIDITY = dt.timedelta(days=365 * 20)


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _signed(tbs: bytes, signature: bytes) -> bytes:
    return _der(0x30, tbs + ECDSA_SHA256 + _der(0x03, b"\0" + signature))


class DeviceIdentity:
    def __init__(self, chain: KeyChain, clock: Clock, board: str) -> None:
        self._chain = chain
        self._clock = clock
        self._board = board
        self._cache: tuple[str, str, str] | None = None  # (fingerprint, cert, csr)

    def _name(self, fp: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mfpsecd"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"mfpsecd {self._board} {fp[:16]}"),
            ]
        )

    async def documents(self) -> tuple[str, str, str, str]:
        """→ (public key PEM, fingerprint, certificate PEM, CSR PEM)."""
        spki = self._chain.identity_public_der
        fp = fingerprint(spki)
        public = serialization.load_der_public_key(spki)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        if self._cache is None or self._cache[0] != fp:
            cert = await self._certificate(public, fp)
            csr = await self._request(spki, fp)
            self._cache = (fp, cert, csr)
        return pem, fp, self._cache[1], self._cache[2]

    async def _certificate(self, public: ec.EllipticCurvePublicKey, fp: str) -> str:
        now = self._clock.now().replace(microsecond=0)
        name = self._name(fp)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(int(fp[:32], 16) >> 1)
            .not_valid_before(now)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        throwaway = ec.generate_private_key(ec.SECP256R1())
        tbs = builder.sign(throwaway, hashes.SHA256()).tbs_certificate_bytes
        signature = await self._chain.sign_digest(hashlib.sha256(tbs).digest())
        cert = x509.load_der_x509_certificate(_signed(tbs, signature))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    async def _request(self, spki: bytes, fp: str) -> str:
        info = _der(0x30, b"\x02\x01\x00" + self._name(fp).public_bytes() + spki + b"\xa0\x00")
        signature = await self._chain.sign_digest(hashlib.sha256(info).digest())
        csr = x509.load_der_x509_csr(_signed(info, signature))
        return csr.public_bytes(serialization.Encoding.PEM).decode()
