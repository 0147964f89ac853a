"""The sanitization certificate (SPEC W-4): the record of one sanitization after NIST SP
800-88 Rev. 2 (September 2025; Rev. 1 is withdrawn) with IEEE 2883-2022's method names, as
canonical JSON that the device identity key signs, and its plain-text form.

Canonical form: msgspec JSON with keys sorted and no blanks, so the bytes that were signed
can be rebuilt from a parsed certificate. The document that leaves the device is
{"certificate": <body>, "signature": {...}}; verification rebuilds the body's canonical
bytes and checks the signature before anything else in the document is trusted.
"""

from __future__ import annotations

import hashlib

import msgspec

FORMAT = "mfpsecd-sanitization-certificate/1"
SIGNATURE_ALG = "ecdsa-p256-sha256"
REFERENCES = ["NIST SP 800-88 Rev. 2 (September 2025)", "IEEE 2883-2022"]

# Results. CLEAR_ACHIEVED: a purge was asked for and only Clear was reached (the device
# offers no purge method, and a service engineer confirmed it): never plain success.
SUCCESS, CLEAR_ACHIEVED, FAILED, CANCELLED = "success", "clear-achieved", "failed", "cancelled"
_RESULT_TEXT = {
    SUCCESS: "SUCCESS",
    CLEAR_ACHIEVED: "CLEAR ACHIEVED (PURGE REQUESTED)",
    FAILED: "FAILED",
    CANCELLED: "CANCELLED",
}


class _S(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """omit_defaults: a field added later with a default is absent from the canonical
    bytes of a certificate that does not use it, so older signatures still verify."""


class Media(_S, frozen=True):
    id: str
    type: str  # hdd | ssd | nvme | emmc | sd
    model: str
    serial: str
    size_bytes: int
    transport: str


class Method(_S, frozen=True):
    category: str  # "clear" or "purge": the SP 800-88 level the method reaches
    technique: str  # "overwrite", or the device's purge command (nvme-format-erase, ...)
    mode: int  # the discard mode asked for (1-8)
    standard: str  # what the applied plan follows (the seed's mode name)
    passes: list[str]  # "0x00", "random", ...
    reason: str  # why this plan for this medium
    tool: str  # mfpsecd and its version
    # IEEE 2883-2022's name for it: "Clear: overwrite", "Purge: cryptographic erase", ...
    ieee2883: str = ""


class Verification(_S, frozen=True):
    method: str
    result: str  # "passed" | "failed" | "not run"


class Skipped(_S, frozen=True):
    method: str
    reason: str


class Evidence(_S, frozen=True):
    """What the device said about itself before the plan was made."""

    transport: str
    rotational: str  # "yes", "no", "unknown"
    facts: list[str]  # the fields the plan rests on, decoded (OACS, SANICAP, FNA, ...)
    identify: dict[str, str]  # the raw Identify data as read, hex, by name
    problems: list[str]  # what could not be read


class Purge(_S, frozen=True):
    """The media-aware plan (SP 800-88 Clear or Purge) and what the device reported."""

    requested: str  # "clear" | "purge"
    achieved: str  # the level of the method applied
    method: str
    expect: str  # what the read-back had to find: zeros, erased, changed, engine
    whole_device: bool  # the method erases more than the target namespace
    skipped: list[Skipped]  # each stronger method, and why it was not possible
    shortfall: str  # why the requested level was not reached ("" when it was)
    device_said: list[str]  # the command's status or the tool's exit and output, per issue
    confirmed_by: str  # the service engineer who confirmed it ("" when none was needed)
    evidence: Evidence


class Operator(_S, frozen=True):
    user: str
    role: str
    origin: str


class Issuer(_S, frozen=True):
    """The device that sanitized and signs: the controller, not the disk."""

    model: str
    serial: str
    identity: str  # SHA-256 fingerprint of the identity key that signs the certificate
    board: str  # the board profile


class CertificateBody(_S, frozen=True):
    format: str
    id: str  # the job id
    device: str  # board name and identity fingerprint
    media: Media
    method: Method
    verification: Verification
    operator: Operator
    started: str  # RFC 3339 UTC
    ended: str
    resumed: int  # how many times it resumed after a restart (power cut)
    result: str  # SUCCESS | CLEAR_ACHIEVED | FAILED | CANCELLED
    purge: Purge | None = None  # present for a media-aware purge
    issuer: Issuer | None = None
    references: list[str] = []  # the standards the record follows
    error: str = ""  # why a failed or cancelled sanitization did not complete


class Signature(_S, frozen=True):
    alg: str
    public_key: str  # PEM SubjectPublicKeyInfo of the device identity key
    value: str  # hex DER ECDSA signature over SHA-256(canonical body)


class CertificateDocument(_S, frozen=True):
    certificate: CertificateBody
    signature: Signature


_ENC = msgspec.json.Encoder(order="sorted")


def canonical(body: CertificateBody) -> bytes:
    return _ENC.encode(body)


def digest(body: CertificateBody) -> bytes:
    return hashlib.sha256(canonical(body)).digest()


def encode_document(doc: CertificateDocument) -> bytes:
    return _ENC.encode(doc)


def decode_document(data: bytes) -> CertificateDocument:
    """Strict parse (unknown fields refused); raises msgspec.ValidationError/DecodeError."""
    return msgspec.json.decode(data, type=CertificateDocument)


def result_text(result: str) -> str:
    return _RESULT_TEXT.get(result, result.upper())


def title(c: CertificateBody) -> str:
    return ", ".join(c.references) if c.references else "NIST SP 800-88 Rev. 1"


def ieee2883(category: str, technique: str) -> str:
    """IEEE 2883-2022's name for a technique at a level (SP 800-88 Rev. 2 defers to it)."""
    if (
        technique == "overwrite"
        or technique.endswith("-overwrite")
        or technique.startswith("ata-security-erase")
    ):
        kind = "overwrite"
    elif technique.endswith("-crypto"):
        kind = "cryptographic erase"
    elif technique.endswith(("-block", "-erase")):
        kind = "block erase"
    else:
        return f"none: {technique} is not a sanitization technique"
    return f"{category.capitalize()}: {kind}"


VERIFY_HOWTO = (
    "The signed JSON document is the proof: mfpsec wipe verify-cert FILE on the "
    "device, or offline with openssl and the device's identity history (mfpsec "
    "keys identity-history --out DIR; mfpsec wipe cert JOB --openssl DIR; see "
    "the README, Verifying a certificate)."
)


def render_text(doc: CertificateDocument) -> str:
    c = doc.certificate
    m, meth, v, op = c.media, c.method, c.verification, c.operator
    issuer = c.issuer
    lines = [
        f"SANITIZATION CERTIFICATE ({title(c)})",
        "",
        f"Certificate id     {c.id}",
        f"Device             {c.device}",
        *(
            [
                f"  Model            {issuer.model or '-'}",
                f"  Serial           {issuer.serial or '-'}",
                f"  Identity key     {issuer.identity}",
            ]
            if issuer
            else []
        ),
        f"Result             {result_text(c.result)}",
        *([f"Why                {c.error}"] if c.error else []),
        "",
        "Media",
        f"  Id               {m.id}",
        f"  Type             {m.type} ({m.transport})",
        f"  Model            {m.model or '-'}",
        f"  Serial           {m.serial or '-'}",
        f"  Size             {m.size_bytes} bytes",
        "",
        "Sanitization",
        f"  Category         {meth.category}",
        f"  Technique        {meth.technique}",
        *([f"  IEEE 2883        {meth.ieee2883}"] if meth.ieee2883 else []),
        f"  Mode asked       {meth.mode}",
        f"  Applied          {meth.standard}",
        f"  Passes           {', '.join(meth.passes)}",
        f"  Why              {meth.reason}",
        f"  Tool             {meth.tool}",
        "",
        *_purge_lines(c.purge),
        "Verification",
        f"  Method           {v.method}",
        f"  Result           {v.result}",
        "",
        f"Operator           {op.user or '-'} ({op.role or op.origin})",
        f"Started            {c.started}",
        f"Ended              {c.ended}",
        f"Resumed            {c.resumed} time(s) after a restart",
        "",
        f"Signature          {doc.signature.alg}",
        f"Body SHA-256       {digest(c).hex()}",
        "",
        *([VERIFY_HOWTO, ""] if c.issuer else []),
    ]
    return "\n".join(lines)


def _purge_lines(p: Purge | None) -> list[str]:
    if p is None:
        return []
    lines = [
        "Purge plan",
        f"  Requested        {p.requested}",
        f"  Achieved         {p.achieved}" + (f" ({p.shortfall})" if p.shortfall else ""),
        f"  Method           {p.method}" + (" (whole device)" if p.whole_device else ""),
        f"  Expected         {p.expect}",
    ]
    lines += [f"  Not possible     {s.method}: {s.reason}" for s in p.skipped]
    lines += [f"  Device said      {said}" for said in p.device_said]
    if p.confirmed_by:
        lines.append(f"  Confirmed by     {p.confirmed_by}")
    e = p.evidence
    lines.append(f"  Evidence         {e.transport}, rotational {e.rotational}")
    lines += [f"                   {fact}" for fact in e.facts]
    lines += [
        f"                   {name}: {len(raw) // 2} bytes"
        for name, raw in sorted(e.identify.items())
    ]
    lines += [f"                   not read: {problem}" for problem in e.problems]
    lines.append("")
    return lines
