"""io.mfpsecd.Keys handlers."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from mfpsecd.audit.events import EventType
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.caller import subject_of
from mfpsecd.base import identity_keys
from mfpsecd.base.clock import utc_text
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.state import StateConnection
from mfpsecd.keys import api
from mfpsecd.keys.backup_schedule import BackupScheduler, Schedule
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.identity import DeviceIdentity
from mfpsecd.keys.model import identity_history
from mfpsecd.keys.ports import BackupTargetInfo, BackupTargetWatcher
from mfpsecd.keys.secrets import SecretInfo, SecretKind, SecretStore
from mfpsecd.keys.targets import resolve_target
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams

# The daemon's own secrets: password verifiers and TOTP seeds (managed through Auth), the
# backup schedule's passphrase (through its schedule). A secrets administrator who could
# overwrite or delete them would lock accounts out or stop the backups.
_RESERVED_PREFIXES = ("auth.", "keys.")


def _not_reserved(name: str) -> None:
    if name.startswith(_RESERVED_PREFIXES):
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="name")


def _secret(i: SecretInfo) -> api.SecretInfo:
    return api.SecretInfo(i.name, i.kind.value, i.size, i.generation, i.created_at, i.updated_at)


def _target(t: BackupTargetInfo) -> api.BackupTarget:
    return api.BackupTarget(
        id=t.id,
        device=t.device,
        vendor=t.vendor,
        model=t.model,
        serial=t.serial,
        size_bytes=t.size_bytes,
        filesystem=t.filesystem,
        mount_point=t.mount_point,
    )


class KeysHandlers:
    """io.mfpsecd.Keys.

    Destroying the chain takes every secret with it, so what other capabilities keep
    under it goes too: `erase_with_chain` deletes their rows in the chain's transaction,
    `end_sessions` ends the sessions of the accounts that no longer exist."""

    def __init__(
        self,
        chain: KeyChain,
        secrets: SecretStore,
        identity: DeviceIdentity,
        targets: BackupTargetWatcher,
        *,
        auditor: Auditor,
        erase_with_chain: Callable[[StateConnection], None],
        schedule: BackupScheduler,
        end_sessions: Callable[[], int] | None = None,
    ) -> None:
        self._chain = chain
        self._secrets = secrets
        self._identity = identity
        self._targets = targets
        self._auditor = auditor
        self._erase_with_chain = erase_with_chain
        self._end_sessions = end_sessions
        self._schedule = schedule

    @handles(api.GET_KEY_STATUS)
    async def get_key_status(self, ctx: CallContext, _: NoParams) -> api.KeyStatus:
        f = await self._chain.facts()
        return api.KeyStatus(
            state=f.state.value,
            reason=f.reason,
            software_keys=f.software_keys,
            tpm=api.TpmStatus(f.tpm_backend, f.tpm_manufacturer, f.tpm_firmware),
            wrapping_key_fingerprint=f.wrapping_fingerprint,
            identity_fingerprint=f.identity_fingerprint,
            master_key_generation=f.master_generation,
            rotation_pending=f.rotation_pending,
            created_at=f.created_at,
            rotated_at=f.rotated_at,
            last_backup_at=f.last_backup_at,
            backups=f.backups,
            secrets=await self._secrets.count(),
            bound_to=f.bound_to,
        )

    @handles(api.LIST_SECRETS)
    async def list_secrets(self, ctx: CallContext, _: NoParams) -> api.SecretList:
        return api.SecretList([_secret(i) for i in await self._secrets.list()])

    @handles(api.SET_SECRET)
    async def set_secret(self, ctx: CallContext, p: api.SetSecretParams) -> api.SecretInfo:
        _not_reserved(p.name)
        async with self._auditor.event(EventType.SECRET_SET, subject_of(ctx), p.name) as ev:
            with SecretBytes(p.value) as value:  # zeroed when sealed, whatever happens
                i = await self._secrets.put(p.name, SecretKind(p.kind), value)
            ev.details.update(kind=i.kind.value, size=i.size, generation=i.generation)
            ev.succeed()
        return _secret(i)

    @handles(api.DELETE_SECRET)
    async def delete_secret(self, ctx: CallContext, p: api.SecretNameParams) -> api.Empty:
        _not_reserved(p.name)
        async with self._auditor.event(EventType.SECRET_DELETE, subject_of(ctx), p.name) as ev:
            await self._secrets.delete(p.name)
            ev.succeed()
        return api.Empty()

    def _resolve_target(self, target: str) -> Path:
        return resolve_target(self._targets, target)

    @handles(api.BACKUP_KEYS)
    async def backup_keys(self, ctx: CallContext, p: api.BackupParams) -> api.BackupResult:
        async with self._auditor.event(EventType.KEYS_BACKUP, subject_of(ctx), p.target) as ev:
            with SecretBytes(p.passphrase) as passphrase:
                r = await self._chain.backup(passphrase, self._resolve_target(p.target))
            ev.details.update(path=str(r.path), fingerprint=r.fingerprint)
            ev.succeed()
        return api.BackupResult(str(r.path), r.fingerprint, r.created_at, r.size)

    @handles(api.GET_BACKUP_SCHEDULE)
    async def get_backup_schedule(self, ctx: CallContext, _: NoParams) -> api.BackupSchedule:
        return _schedule_info(self._schedule.schedule)

    @handles(api.SET_BACKUP_SCHEDULE)
    async def set_backup_schedule(
        self, ctx: CallContext, p: api.SetBackupScheduleParams
    ) -> api.BackupSchedule:
        scheduler = self._schedule
        async with self._auditor.event(EventType.KEYS_BACKUP, subject_of(ctx), p.target) as ev:
            ev.details.update(schedule="set", every_days=p.every_days, keep=p.keep)
            with SecretBytes(p.passphrase) as passphrase:
                s = await scheduler.set(passphrase, p.target, p.every_days, p.keep)
            ev.details.update(path=s.last_path)
            ev.succeed()
        return _schedule_info(s)

    @handles(api.CLEAR_BACKUP_SCHEDULE)
    async def clear_backup_schedule(self, ctx: CallContext, _: NoParams) -> api.BackupSchedule:
        scheduler = self._schedule
        async with self._auditor.event(EventType.KEYS_BACKUP, subject_of(ctx), "schedule") as ev:
            ev.details.update(schedule="cleared")
            await scheduler.clear()
            ev.succeed()
        return _schedule_info(None)

    @handles(api.RESTORE_KEYS)
    async def restore_keys(self, ctx: CallContext, p: api.RestoreParams) -> api.RestoreResult:
        chain, subject = self._chain, subject_of(ctx)
        # Taken first: the passphrase is wiped however the call ends.
        with SecretBytes(p.passphrase) as passphrase:
            async with self._auditor.event(EventType.KEYS_RESTORE, subject, p.source) as ev:
                # A relative path would be the daemon's working directory's, not the caller's.
                if not Path(p.source).is_absolute():
                    raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="source")
                before = (await chain.facts()).identity_fingerprint
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
        return api.RestoreResult(fp)

    @handles(api.ROTATE_MASTER_KEY)
    async def rotate_master_key(self, ctx: CallContext, _: NoParams) -> api.RotateResult:
        subject = subject_of(ctx)
        async with self._auditor.event(EventType.KEYS_ROTATE, subject, "master key") as ev:
            generation = await self._chain.rotate()
            ev.details["generation"] = generation
            ev.succeed()
        return api.RotateResult(generation, await self._secrets.count())

    @handles(api.DESTROY_KEYS)
    async def destroy_keys(self, ctx: CallContext, p: api.DestroyParams) -> api.Empty:
        subject = subject_of(ctx)
        async with self._auditor.event(EventType.KEYS_DESTROY, subject, "key chain") as ev:
            f = await self._chain.facts()
            if not f.wrapping_fingerprint or p.confirm_fingerprint != f.wrapping_fingerprint:
                raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="confirm_fingerprint")
            await self._chain.destroy(self._erase_with_chain)
            if self._end_sessions is not None:
                ev.details["sessions_ended"] = self._end_sessions()
            ev.details["fingerprint"] = f.wrapping_fingerprint
            ev.succeed()
        return api.Empty()

    @handles(api.GET_DEVICE_IDENTITY)
    async def get_device_identity(self, ctx: CallContext, _: NoParams) -> api.DeviceIdentity:
        pem, fp, cert, csr = await self._identity.documents()
        return api.DeviceIdentity(pem, fp, cert, csr)

    @handles(api.GET_IDENTITY_HISTORY)
    async def get_identity_history(self, ctx: CallContext, _: NoParams) -> api.IdentityHistory:
        known = await self._chain.identities()
        proofs = [k.proof for k in known if k.proof is not None]
        return api.IdentityHistory(
            identities=[
                api.IdentityEntry(
                    k.fingerprint,
                    identity_keys.pem(k.spki_der),
                    k.replaced_at,
                    k.proof.link.seq if k.proof else 0,
                )
                for k in known
            ],
            links=[
                api.IdentityLinkDocument(
                    p.link.seq, identity_history.canonical(p.link).decode(), p.signature
                )
                for p in proofs
            ],
        )

    @handles(api.LIST_BACKUP_TARGETS)
    def list_backup_targets(self, ctx: CallContext, _: NoParams) -> api.BackupTargets:
        return api.BackupTargets([_target(t) for t in self._targets.current()])

    @handles(api.WATCH_BACKUP_TARGETS)
    async def watch_backup_targets(
        self, ctx: CallContext, _: NoParams
    ) -> AsyncIterator[api.BackupTargets]:
        async for current in self._targets.watch():
            yield api.BackupTargets([_target(t) for t in current])


def _schedule_info(s: Schedule | None) -> api.BackupSchedule:
    if s is None:
        return api.BackupSchedule(False, "", 0, 0, "", "", "", "", "")
    return api.BackupSchedule(
        True,
        s.target,
        s.every_days,
        s.keep,
        utc_text(dt.datetime.fromtimestamp(s.next_at, dt.UTC), "seconds"),
        s.last_at,
        s.last_result,
        s.last_error,
        s.last_path,
    )
