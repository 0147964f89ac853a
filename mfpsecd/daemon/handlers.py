"""The table from declared method to implementation. The contract tests check that every
declared method has an entry here and that nothing undeclared does."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from mfpsecd import __version__
from mfpsecd.api import audit as audit_api
from mfpsecd.api import keys, registry
from mfpsecd.api.auditlog import EventType, Outcome, Record
from mfpsecd.api.types import DaemonState, Status
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.state import StateConnection
from mfpsecd.core import identity_history
from mfpsecd.daemon.auth_handlers import auth_handlers, subject_of
from mfpsecd.firmware.api import FIRMWARE
from mfpsecd.firmware.handlers import FirmwareHandlers
from mfpsecd.firmware.service import FirmwareService
from mfpsecd.ipfilter.api import NETWORK
from mfpsecd.ipfilter.handlers import NetworkHandlers
from mfpsecd.ipfilter.service import NetfilterService
from mfpsecd.ports import BackupTargetInfo, BackupTargetWatcher
from mfpsecd.services.audit import Auditor, AuditQuery
from mfpsecd.services.auth import AuthService
from mfpsecd.services.forwarder import Forwarder
from mfpsecd.services.identity import DeviceIdentity
from mfpsecd.services.keys import KeyChain
from mfpsecd.services.secrets import SecretKind, SecretStore
from mfpsecd.services.status import StatusService
from mfpsecd.services.user_store import UserStore
from mfpsecd.store.handlers import StoreHandlers
from mfpsecd.store.service import JobStore
from mfpsecd.varlink import idl
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.routes import routes
from mfpsecd.varlink.schema import Interface, NoParams
from mfpsecd.varlink.server import CallContext, Handler, Last
from mfpsecd.varlink.service import GetInterfaceDescriptionParams, Info, InterfaceDescription
from mfpsecd.wipe.handlers import WipeHandlers
from mfpsecd.wipe.service import WipeService

_INTERFACES = {i.name: i for i in registry.INTERFACES}


@functools.cache
def _description(name: str) -> str | None:
    """Generated at the first request, not at start-up (it reads the declaring sources
    for the field comments)."""
    interface = _INTERFACES.get(name)
    return None if interface is None else idl.generate(interface)


class _StatusReply:
    """GetStatus, pre-encoded: the Status JSON is encoded once per health generation and
    only the uptime is spliced in per call (encoding the whole struct was most of the
    handler's cost on the panel's polling path). The bytes are exactly what encoding
    the Status would give; a unit test holds them to that."""

    _FIELD = b'"uptime_seconds":'

    def __init__(self, status: StatusService) -> None:
        self._status = status
        self._cached: tuple[int, bytes, bytes] | None = None

    def _parts(self) -> tuple[int, bytes, bytes]:
        generation, template = self._status.snapshot()
        cached = self._cached
        if cached is None or cached[0] != generation:
            data = _encoder.encode(template)
            at = data.index(self._FIELD + b"0.0") + len(self._FIELD)
            cached = self._cached = (generation, data[:at], data[at + 3 :])
        return cached

    def encoded(self) -> msgspec.Raw:
        _, head, tail = self._parts()
        return msgspec.Raw(head + repr(self._status.uptime()).encode() + tail)

    def message(self) -> bytes:
        """The whole reply message, NUL included (the IPC server's fast path)."""
        _, head, tail = self._parts()
        return b"".join(
            (b'{"parameters":', head, repr(self._status.uptime()).encode(), tail, b"}\0")
        )


_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class KeyServices:
    chain: KeyChain
    secrets: SecretStore
    identity: DeviceIdentity
    targets: BackupTargetWatcher
    auditor: Auditor
    forwarders: tuple[Forwarder, ...] = ()


# The exact bytes our clients send for GetStatus (wire.encode_call without parameters).
GET_STATUS_CALL = b'{"method":"io.mfpsecd.System.GetStatus"}'


def fast_replies(status: StatusService) -> dict[bytes, tuple[str, Callable[[], bytes]]]:
    """Calls answered from the read callback without parsing: the panel polls GetStatus,
    so its canonical message maps straight to the pre-encoded reply. The server still
    checks the method's privilege; any other spelling of the call takes the normal path.
    """
    return {GET_STATUS_CALL: ("io.mfpsecd.System.GetStatus", _StatusReply(status).message)}


@dataclass(frozen=True)
class DataServices:
    """What works on the device's stored data: sanitization and the job store."""

    wipe: WipeService
    store: JobStore
    store_encryption: str  # how objects are encrypted, as GetStoreStatus says it
    descriptors: FdChannel  # descriptors passed for Put and Read, firmware bundles
    firmware: FirmwareService | None = None  # a board without [firmware] has none
    network: NetfilterService | None = None  # a board without interfaces has none


def build_handlers(
    status: StatusService,
    key_services: KeyServices | None = None,
    auth: AuthService | None = None,
    data: DataServices | None = None,
) -> dict[str, Handler]:
    """The whole table; without the services (tests of the IPC layer) Keys, Audit, Auth,
    Wipe and Store are absent and their methods answer MethodNotImplemented."""
    table = _system_handlers(status)
    if key_services is not None:
        table.update(_key_handlers(key_services, auth))
        table.update(_audit_handlers(key_services.auditor, key_services.forwarders))
        if auth is not None:
            table.update(auth_handlers(auth, key_services.auditor, status))
            if data is not None:
                table.update(routes(WipeHandlers(data.wipe, auth)))
                table.update(
                    routes(StoreHandlers(data.store, auth, data.store_encryption, data.descriptors))
                )
                table.update(
                    _unavailable(
                        FIRMWARE,
                        ErrorCode.FIRMWARE_UNAVAILABLE,
                        "this board profile has no [firmware] section",
                    )
                    if data.firmware is None
                    else routes(FirmwareHandlers(data.firmware, auth, data.descriptors))
                )
                table.update(
                    _unavailable(
                        NETWORK,
                        ErrorCode.NETWORK_UNAVAILABLE,
                        "this board profile lists no network interfaces",
                    )
                    if data.network is None
                    else routes(NetworkHandlers(data.network, data.descriptors))
                )
    return table


def failed_handlers(status: StatusService, test: str) -> dict[str, Handler]:
    """After a failed power-on self-test: status and introspection answer, and every
    security function refuses and names the test (fail closed, FPT_TST_EXT.1)."""

    def refused(ctx: CallContext, _: object) -> msgspec.Raw:
        raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test=test)

    async def refused_stream(ctx: CallContext, _: object) -> AsyncIterator[msgspec.Raw]:
        raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test=test)
        yield msgspec.Raw(b"")  # never reached: makes this an async generator

    table = _system_handlers(status)
    for interface in registry.INTERFACES:
        if interface.name not in {"org.varlink.service", "io.mfpsecd.System"}:
            table.update(
                {
                    f"{interface.name}.{m.name}": refused_stream if m.streams else refused
                    for m in interface.methods
                }
            )
    return table


def _unavailable(interface: Interface, code: ErrorCode, reason: str) -> dict[str, Handler]:
    """Every method of an interface the board has nothing behind: each call says why."""

    def unavailable(ctx: CallContext, _: object) -> msgspec.Raw:
        raise MfpsecError(code, reason=reason)

    return {f"{interface.name}.{m.name}": unavailable for m in interface.methods}


def _system_handlers(status: StatusService) -> dict[str, Handler]:
    # Plain functions answer from the read callback (see ipc_server); only handlers that
    # wait for something are coroutines or async generators.
    def get_info(ctx: CallContext, _: NoParams) -> Info:
        return Info(
            vendor=registry.VENDOR,
            product=registry.PRODUCT,
            version=__version__,
            url=registry.URL,
            interfaces=[i.name for i in registry.INTERFACES],
        )

    def get_interface_description(
        ctx: CallContext, params: GetInterfaceDescriptionParams
    ) -> InterfaceDescription:
        text = _description(params.interface)
        if text is None:
            raise MfpsecError(ErrorCode.INTERFACE_NOT_FOUND, interface=params.interface)
        return InterfaceDescription(description=text)

    reply = _StatusReply(status)

    def get_status(ctx: CallContext, _: NoParams) -> msgspec.Raw:
        return reply.encoded()

    async def watch_status(ctx: CallContext, _: NoParams) -> AsyncIterator[Status | Last[Status]]:
        async for s in status.watch():
            if s.state is DaemonState.STOPPING:
                yield Last(s)  # the stream's proper end: the daemon is going away
                return
            yield s

    return {
        "org.varlink.service.GetInfo": get_info,
        "org.varlink.service.GetInterfaceDescription": get_interface_description,
        "io.mfpsecd.System.GetStatus": get_status,
        "io.mfpsecd.System.WatchStatus": watch_status,
    }


def _erase_secrets_and_accounts(conn: StateConnection) -> None:
    SecretStore.erase_all(conn)
    UserStore.erase_all(conn)


def _target_wire(t: BackupTargetInfo) -> keys.BackupTarget:
    return keys.BackupTarget(
        id=t.id,
        device=t.device,
        vendor=t.vendor,
        model=t.model,
        serial=t.serial,
        size_bytes=t.size_bytes,
        filesystem=t.filesystem,
        mount_point=t.mount_point,
    )


# The daemon's own secrets (password verifiers, TOTP seeds): managed through Auth only.
_RESERVED_PREFIX = "auth."


def _not_reserved(name: str) -> None:
    if name.startswith(_RESERVED_PREFIX):
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="name")


def _key_handlers(svc: KeyServices, auth: AuthService | None) -> dict[str, Handler]:  # noqa: C901 - to split (issue 24)
    chain, secrets, auditor = svc.chain, svc.secrets, svc.auditor

    async def get_key_status(ctx: CallContext, _: NoParams) -> keys.KeyStatus:
        f = await chain.facts()
        count = await secrets.count()
        return keys.KeyStatus(
            state=f.state.value,
            reason=f.reason,
            software_keys=f.software_keys,
            tpm=keys.TpmStatus(f.tpm_backend, f.tpm_manufacturer, f.tpm_firmware),
            wrapping_key_fingerprint=f.wrapping_fingerprint,
            identity_fingerprint=f.identity_fingerprint,
            master_key_generation=f.master_generation,
            rotation_pending=f.rotation_pending,
            created_at=f.created_at,
            rotated_at=f.rotated_at,
            last_backup_at=f.last_backup_at,
            backups=f.backups,
            secrets=count,
            bound_to=f.bound_to,
        )

    async def list_secrets(ctx: CallContext, _: NoParams) -> keys.SecretList:
        return keys.SecretList(
            [
                keys.SecretInfo(
                    i.name, i.kind.value, i.size, i.generation, i.created_at, i.updated_at
                )
                for i in await secrets.list()
            ]
        )

    async def set_secret(ctx: CallContext, p: keys.SetSecretParams) -> keys.SecretInfo:
        _not_reserved(p.name)
        async with auditor.event(EventType.SECRET_SET, subject_of(ctx), p.name) as ev:
            with SecretBytes(p.value) as value:  # zeroed when sealed, whatever happens
                i = await secrets.put(p.name, SecretKind(p.kind), value)
            ev.details.update(kind=i.kind.value, size=i.size, generation=i.generation)
            ev.succeed()
        return keys.SecretInfo(
            i.name, i.kind.value, i.size, i.generation, i.created_at, i.updated_at
        )

    async def delete_secret(ctx: CallContext, p: keys.SecretNameParams) -> keys.Empty:
        _not_reserved(p.name)
        async with auditor.event(EventType.SECRET_DELETE, subject_of(ctx), p.name) as ev:
            await secrets.delete(p.name)
            ev.succeed()
        return keys.Empty()

    def resolve_target(target: str) -> Path:
        for t in svc.targets.current():
            if t.id == target:
                if not t.mount_point:
                    raise MfpsecError(
                        ErrorCode.BACKUP_TARGET_UNUSABLE, target=target, reason="not mounted"
                    )
                return Path(t.mount_point)
        path = Path(target)
        if not path.is_absolute():
            raise MfpsecError(
                ErrorCode.BACKUP_TARGET_UNUSABLE,
                target=target,
                reason="neither an absolute path nor a backup target id",
            )
        return path

    async def backup_keys(ctx: CallContext, p: keys.BackupParams) -> keys.BackupResult:
        async with auditor.event(EventType.KEYS_BACKUP, subject_of(ctx), p.target) as ev:
            with SecretBytes(p.passphrase) as passphrase:
                r = await chain.backup(passphrase, resolve_target(p.target))
            ev.details.update(path=str(r.path), fingerprint=r.fingerprint)
            ev.succeed()
        return keys.BackupResult(str(r.path), r.fingerprint, r.created_at, r.size)

    async def restore_keys(ctx: CallContext, p: keys.RestoreParams) -> keys.RestoreResult:
        subject = subject_of(ctx)
        async with auditor.event(EventType.KEYS_RESTORE, subject, p.source) as ev:
            before = (await chain.facts()).identity_fingerprint
            with SecretBytes(p.passphrase) as passphrase:
                fp = await chain.restore(
                    passphrase, Path(p.source), by=subject.user or subject.origin
                )
            # Both identity keys, as the identity history's link names them.
            ev.details.update(
                fingerprint=fp,
                previous_identity=before,
                identity=(await chain.facts()).identity_fingerprint,
                identity_history="linked"
                if chain.restored_link
                else "not linked: the previous identity was not attested",
            )
            ev.succeed()
        return keys.RestoreResult(fp)

    async def rotate(ctx: CallContext, _: NoParams) -> keys.RotateResult:
        async with auditor.event(EventType.KEYS_ROTATE, subject_of(ctx), "master key") as ev:
            generation = await chain.rotate()
            ev.details["generation"] = generation
            ev.succeed()
        return keys.RotateResult(generation, await secrets.count())

    async def destroy(ctx: CallContext, p: keys.DestroyParams) -> keys.Empty:
        async with auditor.event(EventType.KEYS_DESTROY, subject_of(ctx), "key chain") as ev:
            f = await chain.facts()
            if not f.wrapping_fingerprint or p.confirm_fingerprint != f.wrapping_fingerprint:
                raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="confirm_fingerprint")
            await chain.destroy(_erase_secrets_and_accounts)
            if auth is not None:  # their accounts are gone with the secrets
                ev.details["sessions_ended"] = auth.sessions.end_all()
            ev.details["fingerprint"] = f.wrapping_fingerprint
            ev.succeed()
        return keys.Empty()

    async def identity(ctx: CallContext, _: NoParams) -> keys.DeviceIdentity:
        pem, fp, cert, csr = await svc.identity.documents()
        return keys.DeviceIdentity(pem, fp, cert, csr)

    async def get_identity_history(ctx: CallContext, _: NoParams) -> keys.IdentityHistory:
        known = await chain.identities()
        proofs = [k.proof for k in known if k.proof is not None]
        return keys.IdentityHistory(
            identities=[
                keys.IdentityEntry(
                    k.fingerprint,
                    identity_history.pem(k.spki_der),
                    k.replaced_at,
                    k.proof.link.seq if k.proof else 0,
                )
                for k in known
            ],
            links=[
                keys.IdentityLinkDocument(
                    p.link.seq, identity_history.canonical(p.link).decode(), p.signature
                )
                for p in proofs
            ],
        )

    def list_targets(ctx: CallContext, _: NoParams) -> keys.BackupTargets:
        return keys.BackupTargets([_target_wire(t) for t in svc.targets.current()])

    async def watch_targets(ctx: CallContext, _: NoParams) -> AsyncIterator[keys.BackupTargets]:
        async for current in svc.targets.watch():
            yield keys.BackupTargets([_target_wire(t) for t in current])

    k = "io.mfpsecd.Keys."
    return {
        k + "GetKeyStatus": get_key_status,
        k + "ListSecrets": list_secrets,
        k + "SetSecret": set_secret,
        k + "DeleteSecret": delete_secret,
        k + "BackupKeys": backup_keys,
        k + "RestoreKeys": restore_keys,
        k + "RotateMasterKey": rotate,
        k + "DestroyKeys": destroy,
        k + "GetDeviceIdentity": identity,
        k + "GetIdentityHistory": get_identity_history,
        k + "ListBackupTargets": list_targets,
        k + "WatchBackupTargets": watch_targets,
    }


def _entry(r: Record) -> audit_api.AuditEntry:
    s = r.subject
    return audit_api.AuditEntry(
        seq=r.seq,
        time=r.time,
        type=r.type.value,
        outcome=r.outcome.value,
        subject=audit_api.AuditSubject(s.origin, s.user, s.role, s.uid, s.pid, s.address),
        object=r.object,
        details={k: str(v) for k, v in r.details.items()},
    )


_EXPORT_CHUNK = 1000


def _audit_handlers(auditor: Auditor, forwarders: tuple[Forwarder, ...]) -> dict[str, Handler]:
    async def query(ctx: CallContext, p: audit_api.AuditQueryParams) -> audit_api.AuditEntries:
        try:
            types = frozenset(EventType(t) for t in p.types)
            outcome = Outcome(p.outcome) if p.outcome else None
        except ValueError:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="types/outcome") from None
        async with auditor.event(EventType.AUDIT_READ, subject_of(ctx), "query") as ev:
            records = await auditor.query(
                AuditQuery(p.since, p.until, types, p.user, outcome, p.limit)
            )
            ev.details["records"] = len(records)
            ev.succeed()
        return audit_api.AuditEntries([_entry(r) for r in records])

    async def verify(ctx: CallContext, _: NoParams) -> audit_api.AuditVerdict:
        v = await auditor.verify()
        return audit_api.AuditVerdict(
            v.ok, v.records, v.last_seq, v.last_hash.hex(), v.problem, v.at_seq, v.detail
        )

    async def export(
        ctx: CallContext, _: NoParams
    ) -> AsyncIterator[audit_api.AuditExport | Last[audit_api.AuditExport]]:
        async with auditor.event(EventType.AUDIT_READ, subject_of(ctx), "export") as ev:
            lines = [raw.decode() for raw in await auditor.export()]
            ev.details["records"] = len(lines)
            ev.succeed()
        for start in range(0, max(len(lines) - _EXPORT_CHUNK, 0), _EXPORT_CHUNK):
            yield audit_api.AuditExport(lines[start : start + _EXPORT_CHUNK])
        tail = len(lines) - (len(lines) - 1) % _EXPORT_CHUNK - 1 if lines else 0
        yield Last(audit_api.AuditExport(lines[tail:]))

    def forward_status(ctx: CallContext, _: NoParams) -> audit_api.ForwardStatus:
        out = []
        for f in forwarders:
            s = f.status
            backlog = max(auditor.last_seq - s.cursor, 0)
            out.append(
                audit_api.Destination(
                    s.name,
                    s.transport,
                    s.format,
                    s.address,
                    s.connected,
                    s.cursor,
                    backlog,
                    s.sent,
                    s.last_sent_at,
                    s.last_error,
                )
            )
        return audit_api.ForwardStatus(out)

    a = "io.mfpsecd.Audit."
    return {
        a + "QueryAudit": query,
        a + "VerifyAudit": verify,
        a + "ExportAudit": export,
        a + "GetForwardStatus": forward_status,
    }
