"""The signed posture report (S-1): the posture read now, graded into a security level,
signed with the device identity key in the TPM, and checked against this device's
identity keys only (the one it holds now and every earlier one its identity history
proves), never against the key a document carries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from mfpsecd.audit.checkpoints import Signer, identity_signature
from mfpsecd.base import identity_keys
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthState
from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.keys.model.identity_history import KnownIdentity
from mfpsecd.system import report_document as pr
from mfpsecd.system.model.security_level import Grade, grade
from mfpsecd.system.ports import DeviceFacts, HardeningSource
from mfpsecd.system.posture import PostureBook, PostureEntry
from mfpsecd.system.status import StatusService

LANGUAGE = "en"  # the language of the report's titles, settings and details
REUSE_S = 5.0


def _undated(body: pr.ReportBody) -> pr.ReportBody:
    return msgspec.structs.replace(body, at="")


class PostureReporter:
    def __init__(
        self,
        book: PostureBook,
        status: StatusService,
        clock: Clock,
        *,
        signer: Signer,
        identities: Callable[[], Awaitable[list[KnownIdentity]]],
        hardening: HardeningSource,
        device: Callable[[], DeviceFacts],
    ) -> None:
        self._book = book
        self._status = status
        self._clock = clock
        self._signer = signer
        # This device's identity keys, the current one first (KeysUnavailable while the
        # key chain is not ready).
        self._identities = identities
        self._hardening = hardening
        self._device = device
        self._lock = asyncio.Lock()
        self._last: tuple[float, pr.ReportBody, pr.ReportDocument] | None = None

    async def issue(self) -> pr.ReportDocument:
        """The posture now, graded and signed; KeysUnavailable while the identity key
        cannot sign (the key chain locked, or no TPM on the board). Callers who may read
        the status may ask for it, the panel among them: one at a time, and a report
        signed less than REUSE_S ago is given again while everything it says is the same,
        so that asking in a loop costs the TPM at most one signature per REUSE_S."""
        async with self._lock:
            entries = await self._book.current()
            status = self._status.get_status()
            degraded = [c.name for c in status.components if c.state is not HealthState.OK]
            items = {e.item.id: e.item for e in entries}
            graded = grade(items, await self._hardening(), degraded)
            current = (await self._identities())[0]
            body = self._body(entries, items, graded, current.fingerprint, status.version)
            undated, now = _undated(body), self._clock.monotonic()
            last = self._last
            if last is not None and now - last[0] < REUSE_S and last[1] == undated:
                return last[2]
            signature, pem = await identity_signature(self._signer, pr.digest(body))
            if identity_keys.fingerprint(identity_keys.spki_of(pem)) != current.fingerprint:
                # A restore onto a new TPM between reading the identity and signing.
                raise MfpsecError(
                    ErrorCode.KEYS_UNAVAILABLE,
                    reason="the identity key changed while the report was signed: ask again",
                )
            doc = pr.ReportDocument(
                body, pr.ReportSignature(pr.SIGNATURE_ALG, pem, signature.hex())
            )
            self._last = (now, undated, doc)
            return doc

    def _body(
        self,
        entries: list[PostureEntry],
        items: dict[PostureId, PostureItem],
        graded: Grade,
        identity: str,
        version: str,
    ) -> pr.ReportBody:
        d = self._device()
        firewall = items[PostureId.IP_FILTER]
        return pr.ReportBody(
            format=pr.FORMAT,
            at=rfc3339(self._clock),
            device=pr.ReportDevice(
                d.model, d.serial, d.board, identity, d.firmware_version, version
            ),
            level=graded.level,
            level_text=graded.text,
            runtime_issues=list(graded.runtime_issues),
            checks=[pr.LevelCheck(c.id, c.level, c.title, c.met, c.detail) for c in graded.checks],
            items=[
                pr.ReportItem(
                    e.item.id.value, e.title, e.item.state, e.item.setting, e.item.detail, e.since
                )
                for e in entries
            ],
            hcd=pr.HcdAttributes(
                attributes_natural_language=LANGUAGE,
                machine_type_model=d.model,
                vendor_smi_code=d.vendor_smi_code,
                default_password_enabled=items[PostureId.ADMIN_PASSWORD].state
                is not PostureState.ON,
                firewall_setting=": ".join(
                    x for x in (firewall.state.value, firewall.setting) if x
                ),
                firmware_string_version=d.firmware_version,
            ),
        )

    async def verify(self, data: bytes | str) -> tuple[pr.ReportDocument, KnownIdentity]:
        """→ (document, the identity of this device that signed it); ReportForeign for an
        intact signature by a key this device never had, ReportInvalid otherwise."""
        try:
            doc = pr.decode_document(data)
        except ValueError as exc:
            raise MfpsecError(ErrorCode.SYSTEM_REPORT_INVALID, reason=str(exc)) from None
        known = await self._identities()
        signer = identity_keys.require_signed_by(
            [k.spki_der for k in known],
            doc.signature.public_key,
            doc.signature.value,
            pr.canonical(doc.report),
            invalid=ErrorCode.SYSTEM_REPORT_INVALID,
            foreign=ErrorCode.SYSTEM_REPORT_FOREIGN,
        )
        return doc, known[signer]
