"""The signed posture report (S-1): the security posture as a document an auditor keeps,
signed by the device identity key and checked against the device's identity only, never
against the key it carries. Shared by the daemon, which makes and checks reports, and
the CLI, which renders and checks them away from the device (so it holds nothing of the
daemon's).

The document is canonical JSON (sorted keys, no spaces): {"report": {...}, "signature":
{"alg", "public_key", "value"}}, the signature ECDSA P-256 over SHA-256 of the report
object's canonical bytes, DER, hex. `openssl dgst -sha256 -verify identity.pem
-signature sig.der report.json` checks it without this software (README shows how).

Where PWG 5110.1 (HCD Health Assessment Attributes) names an attribute for what the
report says, the `hcd` object carries it under that name.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.posture import PostureState
from mfpsecd.system.api import MAX_REPORT_BYTES, ReportVerdict

FORMAT = "mfpsecd-posture-report/1"
SIGNATURE_ALG = "ecdsa-p256-sha256"


class _S(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class ReportDevice(_S, frozen=True):
    model: str  # the product model (board profile)
    serial: str  # "" when the board does not say
    board: str  # the board profile's name
    identity: str  # fingerprint (SHA-256 of the SPKI) of the identity key that signs
    firmware: str  # the firmware version this power-on verified ("" when none)
    daemon: str  # mfpsecd's version


class ReportItem(_S, frozen=True):
    id: str  # the S-1 item, e.g. "ip-filter"
    title: str
    state: PostureState
    setting: str
    detail: str
    since: str  # RFC 3339 UTC


class LevelCheck(_S, frozen=True):
    id: str  # e.g. "firmware-rewrite-lock"
    level: Annotated[int, msgspec.Meta(ge=1, le=3)]
    title: str
    met: bool
    detail: str


class HcdAttributes(_S, frozen=True):
    """The PWG 5110.1 attributes the report can state truthfully, by their PWG names.
    FirewallSetting is PWG's port-filter list there; here it is the IP filter's state
    (the rules themselves are in `mfpsec net show`)."""

    attributes_natural_language: str = msgspec.field(name="AttributesNaturalLanguage")
    machine_type_model: str = msgspec.field(name="MachineTypeModel")
    vendor_smi_code: int = msgspec.field(name="VendorSMICode")
    # true when no administrator password that follows the rules is set: this product has
    # no factory default password, so that is the state PWG asks about
    default_password_enabled: bool = msgspec.field(name="DefaultPasswordEnabled")
    firewall_setting: str = msgspec.field(name="FirewallSetting")
    firmware_string_version: str = msgspec.field(name="FirmwareStringVersion")


class ReportBody(_S, frozen=True):
    format: str
    at: str  # RFC 3339 UTC: when the posture was read
    device: ReportDevice
    level: Annotated[int, msgspec.Meta(ge=0, le=3)]
    level_text: str  # "MFPSEC:2", "MFPSEC:2!" with runtime issues
    runtime_issues: list[str]
    checks: list[LevelCheck]
    items: list[ReportItem]
    hcd: HcdAttributes


class ReportSignature(_S, frozen=True):
    alg: str
    public_key: str  # PEM SubjectPublicKeyInfo of the identity key (checked, never trusted)
    value: str  # hex DER ECDSA signature over SHA-256(canonical report)


class ReportDocument(_S, frozen=True):
    report: ReportBody
    signature: ReportSignature


_ENC = msgspec.json.Encoder(order="sorted")


def canonical(body: ReportBody) -> bytes:
    # DEL escaped as jq writes it, so that `jq -jcS .report` gives these very bytes.
    return _ENC.encode(body).replace(b"\x7f", b"\\u007f")


def digest(body: ReportBody) -> bytes:
    return hashlib.sha256(canonical(body)).digest()


def encode_document(doc: ReportDocument) -> bytes:
    return _ENC.encode(doc).replace(b"\x7f", b"\\u007f")


def decode_document(data: bytes | str) -> ReportDocument:
    """Strict parse (unknown fields refused), of the canonical form only: a report is one
    string of bytes, so that its SHA-256 names it (another spacing, key order or escape
    of the same content is refused); ValueError with why for anything else."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_REPORT_BYTES:
        raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
    try:
        doc = msgspec.json.decode(raw, type=ReportDocument)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"malformed: {exc}") from None
    if doc.report.format != FORMAT:
        raise ValueError(f"unknown format {doc.report.format!r}")
    if doc.signature.alg != SIGNATURE_ALG:
        raise ValueError(f"unknown signature algorithm {doc.signature.alg!r}")
    if encode_document(doc) != raw.rstrip(b"\n"):
        raise ValueError(
            "not in canonical form (keys sorted, no spaces): not as the device wrote it"
        )
    return doc


def identity_spki(pem_text: str) -> bytes:
    """The identity key a person recorded: its public key (PEM) or a certificate for it
    (the device's self-signed one, or one an enterprise CA issued from its request).
    ValueError for anything else."""
    # The CLI shows the posture without the cryptography package; only checking a
    # report needs it.
    from cryptography import x509  # noqa: PLC0415
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    from mfpsecd.base import identity_keys  # noqa: PLC0415

    if "-----BEGIN CERTIFICATE-----" in pem_text:
        try:
            cert = x509.load_pem_x509_certificate(pem_text.encode())
            cert.public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"not a certificate of an EC key: {exc}") from None
        pem_text = (
            cert.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
    return identity_keys.spki_of(pem_text)


def verify_offline(document: bytes, identity_pem: str) -> ReportVerdict:
    """Checked against the identity key given (not against the one the report carries):
    what an auditor does away from the device. ReportInvalid / ReportForeign as the daemon
    would answer; InvalidParameter for an identity file that holds no EC key."""
    from mfpsecd.base import identity_keys  # noqa: PLC0415 (see identity_spki)

    try:
        spki = identity_spki(identity_pem)
    except ValueError as exc:
        raise MfpsecError(
            ErrorCode.INVALID_PARAMETER, f"identity: {exc}", parameter="identity"
        ) from None
    try:
        doc = decode_document(document)
    except ValueError as exc:
        raise MfpsecError(ErrorCode.SYSTEM_REPORT_INVALID, reason=str(exc)) from None
    identity_keys.require_signed_by(
        [spki],
        doc.signature.public_key,
        doc.signature.value,
        canonical(doc.report),
        invalid=ErrorCode.SYSTEM_REPORT_INVALID,
        foreign=ErrorCode.SYSTEM_REPORT_FOREIGN,
    )
    return ReportVerdict(
        identity_keys.fingerprint(spki),
        True,
        doc.report.at,
        doc.report.level_text,
        hashlib.sha256(encode_document(doc)).hexdigest(),
    )
