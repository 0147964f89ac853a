"""A sanitization job's certificate (W-4): its body made from the job's record, signed
with the device identity key, and verified against this device's identity keys only
(the current one and every earlier one its identity history proves), never against the
key a document carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from mfpsecd.audit.checkpoints import Signer, identity_signature
from mfpsecd.base import identity_keys
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.keys.model.identity_history import KnownIdentity
from mfpsecd.wipe.jobs import Job, StepKind, describe
from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.purge_record import certificate_purge
from mfpsecd.wipe.purge_record import verification as purge_verification

VERIFY_METHOD = "full read-back of every byte, compared with the last pass"


@dataclass(frozen=True)
class DeviceName:
    """The controller as its certificates name it (W-4)."""

    model: str
    serial: str
    board: str

    @property
    def label(self) -> str:
        return f"{self.model or 'controller'}, serial {self.serial or 'unknown'}"


def completed_result(job: Job) -> str:
    """A purge asked for that reached only Clear says so, never plain success."""
    rec = job.purge
    if rec is not None and rec.requested == "purge" and rec.achieves == "clear":
        return cert.CLEAR_ACHIEVED
    return cert.SUCCESS


def _read_back(job: Job, result: str) -> str:
    if result in (cert.SUCCESS, cert.CLEAR_ACHIEVED):
        return "passed"
    if job.error_code == ErrorCode.WIPE_VERIFY_FAILED.wire_name:
        return "failed"
    return "not run"


class Certifier:
    """Makes, signs and verifies the certificates of this device's sanitizations."""

    def __init__(
        self,
        signer: Signer,
        identities: Callable[[], Awaitable[list[KnownIdentity]]],
        device: DeviceName,
        tool: str,
    ) -> None:
        self._signer = signer
        # This device's identity keys, the current one first (KeysUnavailable while the
        # key chain is not ready).
        self._identities = identities
        self._device = device
        self._tool = tool

    async def issue(self, job: Job, result: str) -> tuple[bytes, cert.CertificateBody]:
        current = (await self._identities())[0]
        body = self.body(job, result, current.fingerprint)
        return await self._sign(body), body

    def body(self, job: Job, result: str, identity: str) -> cert.CertificateBody:
        m = job.media
        rec = job.purge
        passes = [describe(s) for s in job.plan.steps if s.kind in (StepKind.BYTE, StepKind.RANDOM)]
        verification = cert.Verification(method=VERIFY_METHOD, result=_read_back(job, result))
        category, technique, purge = "clear", "overwrite", None
        if rec is not None:
            category, technique = rec.achieves, rec.method
            purge = certificate_purge(rec)
            if rec.device_method:
                verification = purge_verification(rec)
        failed = result in (cert.FAILED, cert.CANCELLED)
        return cert.CertificateBody(
            format=cert.FORMAT,
            id=job.id,
            device=self._device.label,
            media=cert.Media(
                id=m.id,
                type=m.medium.value,
                model=m.model,
                serial=m.serial,
                size_bytes=job.size,
                transport=m.transport,
            ),
            method=cert.Method(
                category=category,
                technique=technique,
                mode=job.mode,
                standard=job.plan.standard,
                passes=passes,
                reason=job.plan.reason,
                tool=self._tool,
                ieee2883=cert.ieee2883(category, technique),
            ),
            verification=verification,
            operator=cert.Operator(
                user=job.operator.user, role=job.operator.role, origin=job.operator.origin
            ),
            started=job.started,
            ended=job.ended,
            resumed=job.resumed,
            result=result,
            purge=purge,
            issuer=cert.Issuer(
                model=self._device.model,
                serial=self._device.serial,
                identity=identity,
                board=self._device.board,
            ),
            references=cert.REFERENCES,
            error=job.error if failed else "",
        )

    async def _sign(self, body: cert.CertificateBody) -> bytes:
        signature, pem = await identity_signature(self._signer, cert.digest(body))
        return cert.encode_document(
            cert.CertificateDocument(
                certificate=body,
                signature=cert.Signature(
                    alg=cert.SIGNATURE_ALG, public_key=pem, value=signature.hex()
                ),
            )
        )

    async def verify(self, data: bytes) -> tuple[cert.CertificateDocument, KnownIdentity]:
        """Against this device's identity keys only. → (document, the identity that signed
        it); CertificateForeign for an intact signature by another key, CertificateInvalid
        for one that matches no key."""
        try:
            doc = cert.decode_document(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise MfpsecError(
                ErrorCode.WIPE_CERTIFICATE_INVALID, reason=f"malformed: {exc}"
            ) from None
        if doc.signature.alg != cert.SIGNATURE_ALG:
            raise MfpsecError(
                ErrorCode.WIPE_CERTIFICATE_INVALID,
                reason=f"unknown signature algorithm {doc.signature.alg!r}",
            )
        known = await self._identities()
        signer = identity_keys.require_signed_by(
            [k.spki_der for k in known],
            doc.signature.public_key,
            doc.signature.value,
            cert.canonical(doc.certificate),
            invalid=ErrorCode.WIPE_CERTIFICATE_INVALID,
            foreign=ErrorCode.WIPE_CERTIFICATE_FOREIGN,
        )
        return doc, known[signer]
