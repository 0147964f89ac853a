"""io.mfpsecd.Store handlers, and who asks under the owner rules."""

from __future__ import annotations

import fcntl
import os

from mfpsecd.api import store as api
from mfpsecd.base.access import Role
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.daemon.auth_handlers import reauthenticate, subject_of
from mfpsecd.services.auth import AuthService
from mfpsecd.services.jobstore import JobStore, ObjectInfo, ObjectKind, Requester
from mfpsecd.services.sessions import seat_of
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.schema import NoParams
from mfpsecd.varlink.server import CallContext, Handler


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
    )


def passed_descriptor(channel: FdChannel, ctx: CallContext, token: str, writing: bool) -> int:
    """The passed descriptor, checked for the direction it is used in (owned by the
    caller, who closes it)."""
    fd = channel.take(token, ctx.peer.uid)
    try:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        mode = -1
    if mode not in ((os.O_WRONLY, os.O_RDWR) if writing else (os.O_RDONLY, os.O_RDWR)):
        os.close(fd)
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="descriptor")
    return fd


def store_handlers(
    store: JobStore, auth: AuthService, encryption: str, channel: FdChannel
) -> dict[str, Handler]:
    async def put(ctx: CallContext, p: api.PutParams) -> api.StoredObject:
        who = requester_of(ctx)
        owner = p.owner or who.user
        if not owner:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="owner")
        if owner != who.user and not who.administrator:
            raise MfpsecError(ErrorCode.PERMISSION_DENIED)
        fd = passed_descriptor(channel, ctx, p.descriptor, writing=False)
        try:
            info = await store.put(fd, owner=owner, job=p.job, kind=ObjectKind(p.kind), name=p.name)
        finally:
            os.close(fd)
        return _wire(info)

    async def read(ctx: CallContext, p: api.ReadParams) -> api.ReadResult:
        await store.info(p.object, requester_of(ctx))  # no descriptor taken for nothing
        fd = passed_descriptor(channel, ctx, p.descriptor, writing=True)
        try:
            size = await store.read(p.object, requester_of(ctx), fd, subject_of(ctx))
        finally:
            os.close(fd)
        return api.ReadResult(size)

    async def status(ctx: CallContext, _: NoParams) -> api.StoreStatus:
        st = await store.status()
        cfg = store.settings
        return api.StoreStatus(
            objects=st.objects,
            bytes=st.bytes,
            sealed_bytes=st.sealed_bytes,
            by_kind=st.by_kind,
            encryption=encryption,
            key_chain=st.key_chain,
            medium=st.medium,
            delete_method=st.delete_method,
            directory=st.directory,
            box_retention_days=round(cfg.box_retention_s / 86400),
            secure_print_timeout_hours=round(cfg.secure_print_timeout_s / 3600),
        )

    async def list_objects(ctx: CallContext, _: NoParams) -> api.StoredObjects:
        return api.StoredObjects([_wire(o) for o in await store.objects(requester_of(ctx))])

    async def delete(ctx: CallContext, p: api.ObjectParams) -> api.StoredObject:
        return _wire(await store.delete(p.object, requester_of(ctx), subject_of(ctx)))

    async def printed(ctx: CallContext, p: api.ObjectParams) -> api.StoredObject:
        return _wire(await store.printed(p.object, requester_of(ctx), subject_of(ctx)))

    async def purge(ctx: CallContext, p: api.PurgeParams) -> api.PurgeResult:
        subject = subject_of(ctx)
        with SecretBytes(p.password) as password:
            await reauthenticate(ctx, auth, password, subject)
        count, size = await store.purge(subject)
        return api.PurgeResult(count, size)

    s = "io.mfpsecd.Store."
    return {
        s + "GetStoreStatus": status,
        s + "ListObjects": list_objects,
        s + "Put": put,
        s + "Read": read,
        s + "MarkPrinted": printed,
        s + "DeleteObject": delete,
        s + "Purge": purge,
    }
