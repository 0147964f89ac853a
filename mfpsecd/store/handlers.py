"""io.mfpsecd.Store handlers, and who asks under the owner rules."""

from __future__ import annotations

import os

from mfpsecd.auth.caller import reauthenticate, subject_of
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import seat_of
from mfpsecd.base.access import Role
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.scan.model.outcome import Source
from mfpsecd.store import api
from mfpsecd.store.service import JobStore, ObjectInfo, ObjectKind, Requester
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


def requester_of(ctx: CallContext) -> Requester:
    """The session's user (an administrator reaches every object); a system peer without
    a session is the device's own administration."""
    s = seat_of(ctx.seat).session
    if s is not None and not s.ended:
        return Requester(s.user, administrator=s.role is Role.ADMINISTRATOR)
    return Requester("", administrator=ctx.peer_class is PeerClass.SYSTEM)


def _wire(o: ObjectInfo) -> api.StoredObject:
    return api.StoredObject(
        id=o.id,
        owner=o.owner,
        job=o.job,
        kind=o.kind.value,
        name=o.name,
        size=o.size,
        sealed_size=o.sealed_size,
        created_at=o.created_at,
        expires_at=o.expires_at,
        scan=o.scan,
    )


class StoreHandlers:
    """io.mfpsecd.Store."""

    def __init__(
        self, store: JobStore, auth: AuthService, encryption: str, channel: FdChannel
    ) -> None:
        self._store = store
        self._auth = auth
        self._encryption = encryption
        self._channel = channel

    @handles(api.PUT)
    async def put(self, ctx: CallContext, p: api.PutParams) -> api.StoredObject:
        who = requester_of(ctx)
        owner = p.owner or who.user
        if not owner:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="owner")
        if owner != who.user and not who.administrator:
            raise MfpsecError(ErrorCode.PERMISSION_DENIED)
        fd = self._channel.take_for(p.descriptor, ctx.peer.uid, writing=False)
        try:
            info = await self._store.put(
                fd,
                owner=owner,
                job=p.job,
                kind=ObjectKind(p.kind),
                name=p.name,
                source=Source(p.source),
                subject=subject_of(ctx),
            )
        finally:
            os.close(fd)
        return _wire(info)

    @handles(api.READ)
    async def read(self, ctx: CallContext, p: api.ReadParams) -> api.ReadResult:
        await self._store.info(p.object, requester_of(ctx))  # no descriptor taken for nothing
        fd = self._channel.take_for(p.descriptor, ctx.peer.uid, writing=True)
        try:
            size = await self._store.read(p.object, requester_of(ctx), fd, subject_of(ctx))
        finally:
            os.close(fd)
        return api.ReadResult(size)

    @handles(api.GET_STORE_STATUS)
    async def status(self, ctx: CallContext, _: NoParams) -> api.StoreStatus:
        st = await self._store.status()
        cfg = self._store.settings
        return api.StoreStatus(
            objects=st.objects,
            bytes=st.bytes,
            sealed_bytes=st.sealed_bytes,
            by_kind=st.by_kind,
            encryption=self._encryption,
            key_chain=st.key_chain,
            medium=st.medium,
            delete_method=st.delete_method,
            directory=st.directory,
            box_retention_days=round(cfg.box_retention_s / 86400),
            secure_print_timeout_hours=round(cfg.secure_print_timeout_s / 3600),
            encrypted_pdf_retention_days=round(cfg.encrypted_pdf_retention_s / 86400),
            id_print_timeout_hours=round(cfg.id_print_timeout_s / 3600),
        )

    @handles(api.LIST_OBJECTS)
    async def list_objects(self, ctx: CallContext, _: NoParams) -> api.StoredObjects:
        return api.StoredObjects([_wire(o) for o in await self._store.objects(requester_of(ctx))])

    @handles(api.DELETE_OBJECT)
    async def delete(self, ctx: CallContext, p: api.ObjectParams) -> api.StoredObject:
        return _wire(await self._store.delete(p.object, requester_of(ctx), subject_of(ctx)))

    @handles(api.MARK_PRINTED)
    async def printed(self, ctx: CallContext, p: api.ObjectParams) -> api.StoredObject:
        return _wire(await self._store.printed(p.object, requester_of(ctx), subject_of(ctx)))

    @handles(api.PURGE)
    async def purge(self, ctx: CallContext, p: api.PurgeParams) -> api.PurgeResult:
        subject = subject_of(ctx)
        with SecretBytes(p.password) as password:
            await reauthenticate(ctx, self._auth, password, subject)
        count, size = await self._store.purge(subject)
        return api.PurgeResult(count, size)
