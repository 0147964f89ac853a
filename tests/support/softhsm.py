"""SoftHSM2 tokens standing in for PKI smart cards: a token per card, a key pair generated
on it (the private key never leaves it), and a certificate for that key issued by a test
CA and stored on the token next to it, as on a real PIV/PKCS#15 card.

SoftHSM reads SOFTHSM2_CONF once per process (C_Initialize): `softhsm_env` sets one
configuration for the whole test session, and every card is a token in it, told apart by
its label.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from mfpsecd.auth.backends.pkcs11_card import Pkcs11Card
from tests.support import pki
from tests.support.pki import Ca

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "246810"
SO_PIN = "13579135"

requires_softhsm = pytest.mark.skipif(
    not Path(MODULE).exists() or shutil.which("softhsm2-util") is None,
    reason="SoftHSM2 is not installed (make setup installs it)",
)


def make_ca(cn: str, now: dt.datetime) -> Ca:
    return pki.make_ca(cn, now - dt.timedelta(days=30), days=3650)


def issue(
    ca: Ca,
    public_key: ec.EllipticCurvePublicKey,
    cn: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A card-holder certificate: digitalSignature, clientAuth (as smart-card logon certs)."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )


@dataclass
class Card:
    label: str
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def reader(self) -> Pkcs11Card:
        return Pkcs11Card(MODULE, token_label=self.label)


def init_token(label: str) -> None:
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def make_card(
    label: str,
    ca: Ca,
    now: dt.datetime,
    *,
    expired: bool = False,
    can_sign: bool = True,
    matching_key: bool = True,
) -> Card:
    """A token with an EC P-256 key pair made on it and a certificate from ca."""
    init_token(label)
    lib = Pkcs11Card(MODULE)._lib()
    lib.reinitialize()
    token = lib.get_token(token_label=label)
    with token.open(rw=True, user_pin=PIN) as s:
        params = s.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        pub, _ = params.generate_keypair(
            store=True, label="card key", id=b"\x01", private_template={Attribute.SIGN: can_sign}
        )
        spki = encode_ec_public_key(pub)
        public = serialization.load_der_public_key(spki)
        if not matching_key:  # a certificate for some other key: a copied certificate
            public = ec.generate_private_key(ec.SECP256R1()).public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=365)
        if expired:
            start, end = now - dt.timedelta(days=400), now - dt.timedelta(days=35)
        cert = issue(ca, public, f"holder of {label}", start, end)
        s.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.ID: b"\x01",
                Attribute.LABEL: "card cert",
                Attribute.SUBJECT: cert.subject.public_bytes(),
                Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
            }
        )
    return Card(label, cert)


@pytest.fixture(scope="session")
def softhsm_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf
