"""io.mfpsecd.Wipe handlers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import msgspec

from mfpsecd.audit.log_format import Subject
from mfpsecd.auth.caller import reauthenticate, subject_of
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import seat_of
from mfpsecd.base import optional
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.varlink.calls import CallContext, Last
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams
from mfpsecd.wipe import api
from mfpsecd.wipe.backends.pdf_process import render_pdf_apart
from mfpsecd.wipe.jobs import JobView
from mfpsecd.wipe.model import certificate as cert
from mfpsecd.wipe.model.purge_plan import PurgeLevel, PurgeMethod
from mfpsecd.wipe.ports import MediaInfo
from mfpsecd.wipe.purge_record import facts
from mfpsecd.wipe.service import PurgePreview, WipeService

_ROTATIONAL = {True: "yes", False: "no", None: "unknown"}


def _target(m: MediaInfo) -> api.Target:
    return api.Target(
        id=m.id,
        device=str(m.path),
        medium=m.medium.value,
        transport=m.transport,
        rotational=_ROTATIONAL[m.rotational],
        model=m.model,
        serial=m.serial,
        size_bytes=m.size_bytes,
        logical_block=m.logical_block,
        sanitizable=m.sanitizable,
        in_use=m.in_use,
    )


def _job(v: JobView) -> api.Job:
    return api.Job(
        id=v.id,
        target=v.target,
        mode=v.mode,
        state=api.JobState(v.state),
        step=v.step,
        steps=v.steps,
        position=v.position,
        size_bytes=v.size,
        started=v.started,
        ended=v.ended,
        resumed=v.resumed,
        error=v.error,
        certificate_sha256=v.certificate_digest,
        method=v.method,
        level=v.level,
        error_code=v.error_code,
        error_params=v.error_params,
    )


def _plan(target: str, preview: PurgePreview) -> api.PurgePlan:
    p, caps = preview.plan, preview.probe.capabilities
    return api.PurgePlan(
        target=target,
        level=api.Level(p.requested.name.lower()),
        method=p.method.value,
        achieves=api.Level(p.achieves.name.lower()),
        expect=p.expect.value,
        whole_device=p.whole_device,
        estimate_s=p.estimate_s,
        needs_confirmation=p.needs_confirmation,
        shortfall=p.shortfall,
        skipped=[api.SkippedMethod(m.value, why) for m, why in p.skipped],
        transport=caps.transport,
        facts=facts(caps),
        evidence=[f"{name}: {len(raw)} bytes" for name, raw in sorted(preview.probe.raw.items())],
        problems=list(preview.probe.problems),
    )


_LEVEL = {api.Level.CLEAR: PurgeLevel.CLEAR, api.Level.PURGE: PurgeLevel.PURGE}


def _method(name: str) -> PurgeMethod | None:
    if not name:
        return None
    try:
        return PurgeMethod(name)
    except ValueError:
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="method") from None


FACTORY = "factory"  # the operator of a sanitization in factory mode


async def operator(
    ctx: CallContext, auth: AuthService, password: SecretBytes, factory_mode: bool
) -> Subject:
    """Who sanitizes: a person, whose session proves their password again. Root without
    a session only in factory mode, and then named as such."""
    subject = subject_of(ctx)
    if seat_of(ctx.seat).session is None:
        if not factory_mode or ctx.peer_class is not PeerClass.SYSTEM:
            raise MfpsecError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                reason="a sanitization certificate names the person who ran it: log in "
                "first (mfpsec login)",
            )
        return msgspec.structs.replace(subject, user=FACTORY, role=FACTORY)
    await reauthenticate(ctx, auth, password, subject)
    return subject


class WipeHandlers:
    """io.mfpsecd.Wipe."""

    def __init__(self, wipe: WipeService, auth: AuthService) -> None:
        self._wipe = wipe
        self._auth = auth

    @handles(api.LIST_TARGETS)
    def list_targets(self, ctx: CallContext, _: NoParams) -> api.Targets:
        return api.Targets([_target(m) for m in self._wipe.targets()])

    @handles(api.START)
    async def start(self, ctx: CallContext, p: api.StartParams) -> api.Job:
        with SecretBytes(p.password) as password:
            subject = await operator(ctx, self._auth, password, self._wipe.settings.factory_mode)
        return _job(await self._wipe.begin(p.target, p.mode, subject))

    @handles(api.PLAN_PURGE)
    async def plan_purge(self, ctx: CallContext, p: api.PlanParams) -> api.PurgePlan:
        return _plan(
            p.target, await self._wipe.plan_purge(p.target, _LEVEL[p.level], _method(p.method))
        )

    @handles(api.PURGE)
    async def purge(self, ctx: CallContext, p: api.PurgeParams) -> api.Job:
        method = _method(p.method)  # before the password is spent
        with SecretBytes(p.password) as password:
            subject = await operator(ctx, self._auth, password, self._wipe.settings.factory_mode)
        return _job(
            await self._wipe.begin_purge(
                p.target,
                _LEVEL[p.level],
                subject,
                mode=p.mode,
                confirm=p.confirm,
                verify_all=p.verify_all,
                method=method,
            )
        )

    @handles(api.LIST_JOBS)
    def list_jobs(self, ctx: CallContext, _: NoParams) -> api.Jobs:
        return api.Jobs([_job(v) for v in self._wipe.jobs()])

    @handles(api.GET_JOB)
    def get_job(self, ctx: CallContext, p: api.JobParams) -> api.Job:
        return _job(self._wipe.job(p.job))

    @handles(api.WATCH)
    async def watch(
        self, ctx: CallContext, p: api.JobParams
    ) -> AsyncIterator[api.Job | Last[api.Job]]:
        async for v in self._wipe.watch(p.job):
            if v.over:
                yield Last(_job(v))
                return
            yield _job(v)
        # The daemon is stopping with the job still to resume: the stream ends anyway.
        yield Last(_job(self._wipe.job(p.job)))

    @handles(api.CANCEL)
    async def cancel(self, ctx: CallContext, p: api.JobParams) -> api.Job:
        return _job(await self._wipe.cancel(p.job, subject_of(ctx)))

    @handles(api.GET_CERTIFICATE)
    async def get_certificate(self, ctx: CallContext, p: api.CertificateParams) -> api.Certificate:
        doc = await self._wipe.certificate(p.job)
        sha = cert.digest(doc.certificate).hex()
        if p.format is api.CertificateFormat.TEXT:
            content = cert.render_text(doc)
        elif p.format is api.CertificateFormat.PDF:
            optional.require_for_call("pdf")
            content = base64.b64encode(await render_pdf_apart(doc)).decode()
        elif p.format is api.CertificateFormat.SIGNED_BODY:
            content = cert.canonical(doc.certificate).decode()
        else:
            content = cert.encode_document(doc).decode()
        return api.Certificate(p.format, content, sha)

    @handles(api.VERIFY_CERTIFICATE)
    async def verify_certificate(
        self, ctx: CallContext, p: api.VerifyCertificateParams
    ) -> api.CertificateVerdict:
        doc, signer = await self._wipe.verify_certificate(p.document.encode())
        c = doc.certificate
        return api.CertificateVerdict(
            valid=True,
            this_device=True,
            id=c.id,
            device=c.device,
            target=c.media.id,
            result=c.result,
            sha256=cert.digest(c).hex(),
            identity_fingerprint=signer.fingerprint,
            identity_replaced_at=signer.replaced_at,
        )
