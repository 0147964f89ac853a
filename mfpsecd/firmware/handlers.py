"""io.mfpsecd.Firmware handlers."""

from __future__ import annotations

import io
import os

from mfpsecd.auth.caller import reauthenticate, subject_of
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import seat_of
from mfpsecd.base.access import Role
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.transfer import PolledReader
from mfpsecd.firmware import api
from mfpsecd.firmware.bundle import VerifiedImage
from mfpsecd.firmware.service import BootRecord, FirmwareService
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


def _boot(r: BootRecord | None) -> api.BootVerification:
    if r is None:
        return api.BootVerification("", "", "", "", False, "", 0, "", 0, "", "")
    return api.BootVerification(
        r.result,
        r.at,
        r.mode,
        r.slot,
        r.trial,
        r.version,
        r.epoch,
        r.digest,
        r.pcr,
        r.pcr_value,
        r.reason,
    )


def _verification(img: VerifiedImage) -> api.Verification:
    m = img.manifest
    return api.Verification(
        m.product,
        m.version,
        m.epoch,
        list(m.models),
        img.digest.hex(),
        img.signer,
        img.files,
        img.bytes,
    )


class FirmwareHandlers:
    """io.mfpsecd.Firmware."""

    def __init__(self, firmware: FirmwareService, auth: AuthService, channel: FdChannel) -> None:
        self._firmware = firmware
        self._auth = auth
        self._channel = channel

    @handles(api.GET_STATUS)
    async def get_status(self, ctx: CallContext, _: NoParams) -> api.FirmwareStatus:
        v = await self._firmware.status()
        return api.FirmwareStatus(
            model=v.model,
            active=v.active,
            pending=v.pending,
            tries=v.tries,
            boot=_boot(v.booted),
            counter=-1 if v.counter is None else v.counter,
            rewrite_prohibited=v.locked,
            prohibited_by=v.locked_by,
            prohibited_at=v.locked_at,
            slots=[api.Slot(s.name, s.state, s.version, s.epoch, s.digest) for s in v.slots],
            last_failed=v.failed,
            last_failed_reason=v.failed_reason,
        )

    @handles(api.VERIFY)
    async def verify(self, ctx: CallContext, p: api.VerifyParams) -> api.Verification:
        subject = subject_of(ctx)
        if p.descriptor is None:
            return _verification(await self._firmware.verify_slot(p.slot or None, subject))
        fd = self._channel.take_for(p.descriptor, ctx.peer.uid, writing=False)
        reader = PolledReader(fd)
        try:
            with io.BufferedReader(reader, 1 << 20) as source:
                return _verification(await self._firmware.verify_archive(source, subject, reader))
        finally:
            os.close(fd)

    @handles(api.UPDATE)
    async def update(self, ctx: CallContext, p: api.UpdateParams) -> api.Staged:
        subject = subject_of(ctx)
        with SecretBytes(p.password) as password:
            await reauthenticate(ctx, self._auth, password, subject)
        fd = self._channel.take_for(p.descriptor, ctx.peer.uid, writing=False)
        reader = PolledReader(fd)
        try:
            with io.BufferedReader(reader, 1 << 20) as source:
                r = await self._firmware.update(source, subject, reader)
        finally:
            os.close(fd)
        return api.Staged(r.slot, r.version, r.epoch, r.digest, self._firmware.settings.boot_tries)

    async def _set_lock(self, ctx: CallContext, p: api.LockParams, locked: bool) -> api.LockState:
        subject = subject_of(ctx)
        s = seat_of(ctx.seat).session
        if not locked and (s is None or s.ended or s.role is not Role.ADMINISTRATOR):
            # F-3: only the administrator lifts it; root without a session is no exception.
            raise MfpsecError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                reason="only an administrator's session allows firmware rewriting again",
            )
        with SecretBytes(p.password) as password:
            await reauthenticate(ctx, self._auth, password, subject)
        await self._firmware.set_lock(locked, subject)
        now, by, at = await self._firmware.lock_state()
        return api.LockState(now, by, at)

    @handles(api.LOCK)
    async def lock(self, ctx: CallContext, p: api.LockParams) -> api.LockState:
        return await self._set_lock(ctx, p, True)

    @handles(api.UNLOCK)
    async def unlock(self, ctx: CallContext, p: api.LockParams) -> api.LockState:
        return await self._set_lock(ctx, p, False)
