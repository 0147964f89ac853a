"""The encrypted job store (SPEC E-1..E-4, W-1, S-1).

Every object (a spooled job, a box document, a held secure-print job) is a segmented
AES-256-GCM stream under its own random 256-bit key; the key is sealed under the key
chain's master key in the state database, next to the object's owner and deletion policy.
A put writes the ciphertext to an unnamed file, flushes it, links it into place and only
then commits the row: a crash at any point leaves nothing listed, and what is on disk
without a row is removed at the next start. A read authenticates the whole object before
the first byte of plaintext leaves. A delete destroys the sealed key first (crypto-erase:
the ciphertext is then unreadable, also in flash cells nothing can overwrite) and then
overwrites the ciphertext with the temporary-data mode on an HDD (W-1) or unlinks it on
flash. Owners read and delete their own objects, administrators all (FDP_ACF); boxes and
unprinted secure-print jobs are deleted by the policy sweep; every deletion is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import enum
import errno
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, rfc3339, utc_text
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.base.transfer import DEFAULT_LIMITS, TransferLimits, WorkerPool, watched
from mfpsecd.keys.chain import ChainState, KeyChain
from mfpsecd.keys.ports import KeyCrypto
from mfpsecd.keys.rotation import Reseal, SealedRecord
from mfpsecd.scan.model.outcome import JobAction, Source, Verdict
from mfpsecd.scan.service import VirusScan
from mfpsecd.store.ports import ObjectCipher
from mfpsecd.wipe.job_data import JobDataOverwriter
from mfpsecd.wipe.model.overwrite_plan import Medium

log = structlog.get_logger("mfpsecd.store")

_KEY_AAD = b"mfpsecd object key v1\0"
_META_AAD = b"mfpsecd object metadata v1\0"
_META_NONCE_BYTES = 12


class _Names(msgspec.Struct, frozen=True):
    """What names a document: sealed under the object's key, so that neither a copy of
    the state database nor what a deleted row leaves behind tells what was stored."""

    job: str
    name: str


class ObjectKind(enum.Enum):
    SPOOL = "spool"  # a job's data while it runs: the job deletes it when it completes
    BOX = "box"  # a document kept in a user box: deleted after the retention time
    SECURE_PRINT = "secure-print"  # held until its owner prints it: deleted then, or later
    # A scan saved as a PDF encrypted with a common key, kept in a box for its owner to
    # fetch: deleted after its retention time.
    ENCRYPTED_PDF = "encrypted-pdf"
    # An ID & Print job: held until its owner authenticates at the panel and prints it;
    # deleted then, or after its timeout.
    ID_PRINT = "id-print"


# The kinds a retention time deletes, and those held for printing that a timeout deletes.
_RETAINED = frozenset({ObjectKind.BOX, ObjectKind.ENCRYPTED_PDF})
_HELD_FOR_PRINT = frozenset({ObjectKind.SECURE_PRINT, ObjectKind.ID_PRINT})


@dataclass(frozen=True)
class ObjectInfo:
    id: str
    owner: str
    job: str
    kind: ObjectKind
    name: str
    size: int
    sealed_size: int
    created_at: str
    expires_at: str  # RFC 3339, or "" when only an explicit delete removes it
    scan: str = ""  # "clean", "not-scanned" (a scan failed; stored by policy), "": none


# A delete that ends the job's life by someone's act (a policy's retention or timeout
# does not complete a job): how job.complete names it.
_ENDS_THE_JOB = {"printed": "printed", "request": "deleted"}


@dataclass(frozen=True)
class Requester:
    """Who asks, for the owner rules: the logged-in user, and whether they administer."""

    user: str
    administrator: bool = False

    def may_access(self, owner: str) -> bool:
        return self.administrator or self.user == owner


SYSTEM_REQUESTER = Requester(user="", administrator=True)  # the daemon's own policies


@dataclass(frozen=True)
class StoreSettings:
    box_retention_s: float = 30 * 86400.0  # 0: boxes are kept until deleted
    secure_print_timeout_s: float = 24 * 3600.0
    encrypted_pdf_retention_s: float = 86400.0  # 0: kept until deleted
    id_print_timeout_s: float = 24 * 3600.0
    sweep_interval_s: float = 60.0
    # Put and Read through a client's descriptor ([transfers]): abandoned when stalled,
    # run on the store's own workers, each owner holding at most per_owner of them.
    transfers: TransferLimits = DEFAULT_LIMITS
    workers: int = 8
    per_owner: int = 2


@dataclass(frozen=True)
class StoreStatus:
    objects: int
    bytes: int
    sealed_bytes: int
    by_kind: dict[str, int]
    directory: str
    medium: str
    delete_method: str
    key_chain: str


def _key_aad(object_id: str) -> bytes:
    return _KEY_AAD + object_id.encode()


def _meta_aad(object_id: str) -> bytes:
    return _META_AAD + object_id.encode()


_COLUMNS = "id, owner, job, kind, name, size, sealed_size, created_at, expires_at, scan"


def _expiry_text(expires: float | None) -> str:
    return (
        "" if expires is None else utc_text(dt.datetime.fromtimestamp(expires, dt.UTC), "seconds")
    )


def _info(row: tuple[object, ...]) -> ObjectInfo:
    id_, owner, job, kind, name, size, sealed, created, expires, scan = row
    return ObjectInfo(
        str(id_),
        str(owner),
        str(job),
        ObjectKind(str(kind)),
        str(name),
        int(str(size)),
        int(str(sealed)),
        str(created),
        _expiry_text(None if expires is None else float(str(expires))),
        str(scan),
    )


class JobStore:
    def __init__(
        self,
        state: StateStore,
        chain: KeyChain,
        cipher: ObjectCipher,
        auditor: Auditor,
        clock: Clock,
        *,
        crypto: KeyCrypto,
        job_data: JobDataOverwriter,
        directory: Path,
        medium: Medium,
        settings: StoreSettings | None = None,
        not_in_place: str = "",
        scan: VirusScan | None = None,
    ) -> None:
        self._state = state
        self._chain = chain
        self._cipher = cipher
        self._crypto = crypto  # AES-256-GCM for the names, under each object's key
        self._job_data = job_data
        self._auditor = auditor
        self._clock = clock
        self._objects = directory / "objects"
        self._tmp = directory / "tmp"
        self._directory = directory
        self.medium = medium
        self.settings = settings or StoreSettings()
        # Why an overwrite of a file in the store does not reach its blocks (its
        # filesystem: copy-on-write, log-structured, data journalled), "" when it does.
        self.not_in_place = not_in_place
        self._locks: dict[str, asyncio.Lock] = {}
        self._scan = scan  # V-1: job data is scanned on its way in (None: not scanned)
        self._pool = WorkerPool("store", self.settings.workers, self.settings.per_owner)
        chain.add_resealer(self._reseal_batch)

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Create the directories; remove what a crash left behind (audited)."""
        for d in (self._directory, self._objects, self._tmp):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        rows = {i.id for i in await self._state.run(_all)}
        for leftover in sorted(self._tmp.iterdir()):
            await self._dispose(leftover)
        for path in sorted(self._objects.iterdir()):
            if path.name not in rows:
                # Its key was never committed, or already destroyed: unreadable; remove it.
                how = await self._dispose(path)
                await self._auditor.record(
                    EventType.STORE_DELETE,
                    Outcome.SUCCESS,
                    DAEMON,
                    path.name,
                    reason="orphan",
                    method=how,
                )
        await self._seal_plaintext_names()
        for object_id in sorted(rows):
            if not (self._objects / object_id).exists():
                await self._erase_keys([object_id])
                await self._auditor.record(
                    EventType.STORE_DELETE,
                    Outcome.FAILURE,
                    DAEMON,
                    object_id,
                    reason="ciphertext missing",
                    method="crypto-erase",
                )

    async def run(self) -> None:
        """The S-1 policy sweep, as a supervised task."""
        while True:
            await self._clock.sleep(self.settings.sweep_interval_s)
            await self.sweep()

    # ---------------------------------------------------------------- queries

    async def objects(self, requester: Requester) -> list[ObjectInfo]:
        found = await self._state.run(lambda conn: _sealed(conn, ""))
        return [
            self._named(info, sealed) for info, sealed in found if requester.may_access(info.owner)
        ]

    async def info(self, object_id: str, requester: Requester) -> ObjectInfo:
        found = await self._state.run(lambda conn: _sealed(conn, object_id))
        if not found or not requester.may_access(found[0][0].owner):
            # Someone else's object is not even confirmed to exist.
            raise MfpsecError(ErrorCode.STORE_OBJECT_NOT_FOUND, object=object_id)
        return self._named(*found[0])

    def _named(self, info: ObjectInfo, sealed: tuple[object, ...]) -> ObjectInfo:
        """The object with its job id and name, opened under its own key. Without the
        key chain (or for a damaged record) it is listed without them, never refused."""
        meta_nonce, meta_sealed = sealed[3:]
        if not isinstance(meta_nonce, bytes) or not isinstance(meta_sealed, bytes):
            return info  # a row from before the names were sealed (sealed at start)
        try:
            with (
                self._key(info.id, sealed[:3]) as key,
                self._crypto.open(key, meta_nonce, _meta_aad(info.id), meta_sealed) as plain,
            ):
                names = msgspec.json.decode(plain.view(), type=_Names)
        except (MfpsecError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("object_names_unreadable", object=info.id, error=str(exc))
            return info
        return dataclasses.replace(info, job=names.job, name=names.name)

    def _seal_names(
        self, key: SecretBytes, object_id: str, job: str, name: str
    ) -> tuple[bytes, bytes]:
        nonce = os.urandom(_META_NONCE_BYTES)
        with SecretBytes(bytearray(msgspec.json.encode(_Names(job, name)))) as plain:
            return nonce, self._crypto.seal(key, nonce, _meta_aad(object_id), plain.view())

    async def _seal_plaintext_names(self) -> None:
        """Rows stored before the names were sealed get them sealed, and their plaintext
        columns emptied (and zeroed by secure_delete), once the key chain is up."""
        if self._chain.state is not ChainState.READY:
            return
        rows = await self._state.run(
            lambda conn: conn.execute(
                "SELECT id, job, name, generation, nonce, sealed_key FROM store_objects "
                "WHERE meta_sealed IS NULL"
            ).fetchall()
        )
        updates = []
        for object_id, job, name, *sealed in rows:
            try:
                with self._key(str(object_id), tuple(sealed)) as key:
                    updates.append(
                        (*self._seal_names(key, str(object_id), str(job), str(name)), object_id)
                    )
            except MfpsecError as exc:  # a damaged row: reading it says so, not the start
                log.error(
                    "object_names_not_sealed", object=str(object_id), error=exc.code.wire_name
                )

        def write(conn: StateConnection) -> None:
            for row in updates:
                conn.execute(
                    "UPDATE store_objects SET meta_nonce = ?, meta_sealed = ?, "
                    "job = '', name = '' WHERE id = ?",
                    row,
                )

        await self._state.run(write)
        if rows:
            await self._state.checkpoint()
            log.info("object_names_sealed", objects=len(rows))

    async def status(self) -> StoreStatus:
        objects = await self._state.run(_all)
        by_kind: dict[str, int] = {}
        for o in objects:
            by_kind[o.kind.value] = by_kind.get(o.kind.value, 0) + 1
        facts = await self._chain.facts()
        return StoreStatus(
            objects=len(objects),
            bytes=sum(o.size for o in objects),
            sealed_bytes=sum(o.sealed_size for o in objects),
            by_kind=by_kind,
            directory=str(self._directory),
            medium=self.medium.value,
            delete_method=self._delete_method(),
            key_chain=facts.state.value,
        )

    @property
    def temporary_mode(self) -> int:
        """The W-1 overwrite mode for a job's data on an HDD."""
        return self._job_data.temporary_mode

    @property
    def key_chain_state(self) -> str:
        return self._chain.state.value

    def _delete_method(self) -> str:
        if self.medium is Medium.HDD and self.not_in_place:
            return (
                f"crypto-erase only ({self.not_in_place}: an overwrite in place would "
                "not reach the data's blocks)"
            )
        if self.medium is Medium.HDD:
            return (
                f"crypto-erase, then overwrite (temporary-data mode "
                f"{self._job_data.temporary_mode})"
            )
        return "crypto-erase (flash: an overwrite does not reach the cells)"

    # ---------------------------------------------------------------- put

    def _expiry(self, kind: ObjectKind) -> float | None:
        now = self._clock.now().timestamp()
        if kind is ObjectKind.BOX and self.settings.box_retention_s > 0:
            return now + self.settings.box_retention_s
        if kind is ObjectKind.ENCRYPTED_PDF and self.settings.encrypted_pdf_retention_s > 0:
            return now + self.settings.encrypted_pdf_retention_s
        if kind is ObjectKind.SECURE_PRINT:
            return now + self.settings.secure_print_timeout_s
        if kind is ObjectKind.ID_PRINT:
            return now + self.settings.id_print_timeout_s
        return None

    async def put(
        self,
        src_fd: int,
        *,
        owner: str,
        job: str,
        kind: ObjectKind,
        name: str,
        source: Source = Source.PRINT,
        subject: Subject = DAEMON,
    ) -> ObjectInfo:
        """Seal everything readable from src_fd as a new object. Nothing is visible until
        the whole object is on disk and its key committed, and, with the virus scan, until
        the scanner's verdict allows it (V-1, V-2): a virus or a failed scan the policy
        refuses leaves nothing but an audit record."""
        self._chain.require_ready()
        object_id = f"{self._clock.now():%Y%m%d}-{secrets.token_hex(10)}"
        path = self._objects / object_id
        linked = False
        mark = ""
        with self._cipher.new_key() as key:
            fd, tmp_path = self._unnamed()
            try:
                size, sealed, verdict = await self._seal(key, object_id, src_fd, fd, owner)
                if verdict is not None:
                    mark = await self._admit(
                        verdict, object_id, owner=owner, job=job, source=source, subject=subject
                    )
                await asyncio.to_thread(os.fdatasync, fd)
                await asyncio.to_thread(self._link, fd, tmp_path, path)
                linked = True
            except OSError as exc:
                raise _io_error(object_id, exc) from None
            finally:
                os.close(fd)
                if not linked and tmp_path is not None:
                    await self._dispose(tmp_path)
            expires = self._expiry(kind)
            info = ObjectInfo(
                object_id,
                owner,
                job,
                kind,
                name,
                size,
                sealed,
                rfc3339(self._clock),
                _expiry_text(expires),
                mark,
            )
            try:
                meta_nonce, meta_sealed = self._seal_names(key, object_id, job, name)
                async with self._chain.lock:
                    generation, nonce, sealed_key = self._chain.seal(_key_aad(object_id), key)
                    await self._state.run(
                        lambda conn: conn.execute(
                            f"INSERT INTO store_objects ({_COLUMNS}, generation, nonce, "  # noqa: S608
                            "sealed_key, meta_nonce, meta_sealed) "
                            "VALUES (?, ?, '', ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                object_id,
                                owner,
                                kind.value,
                                size,
                                sealed,
                                info.created_at,
                                expires,
                                mark,
                                generation,
                                nonce,
                                sealed_key,
                                meta_nonce,
                                meta_sealed,
                            ),
                        )
                    )
            except BaseException:
                await self._dispose(path)
                raise
        log.info("object stored", object=object_id, kind=kind.value, bytes=size, scan=mark)
        return info

    async def _seal(
        self, key: SecretBytes, object_id: str, src_fd: int, fd: int, owner: str
    ) -> tuple[int, int, Verdict | None]:
        """Seal src_fd into fd; with the virus scan, through the scanner on the way.
        → (plaintext bytes, sealed bytes, the verdict or None)."""
        progress = self._cipher.progress()
        scan = self._scan

        def seal(src: int) -> tuple[int, int]:
            return self._cipher.seal(key, object_id.encode(), src, fd, object_id, progress=progress)

        def work() -> tuple[int, int, Verdict | None]:
            if scan is None:
                return (*seal(src_fd), None)
            (size, sealed), verdict = scan.through(src_fd, seal)
            return size, sealed, verdict

        return await watched(
            self._pool.run(work, owner),
            progress,
            self._clock,
            self.settings.transfers,
            f"object {object_id}",
        )

    async def _admit(
        self,
        verdict: Verdict,
        object_id: str,
        *,
        owner: str,
        job: str,
        source: Source,
        subject: Subject,
    ) -> str:
        """The object's scan mark when the verdict lets it be stored; else the record,
        the job's consequence, and the error that says so."""
        assert self._scan is not None
        judgement = self._scan.judge(verdict, source)
        if judgement.store and not verdict.failure:
            return judgement.mark
        deleted = 0
        try:
            if verdict.signature and judgement.action is JobAction.DELETE:
                deleted = await self._delete_job(owner, job, subject)
        finally:  # the detection is recorded even when deleting the job failed
            await self._scan.record(
                verdict,
                judgement,
                subject,
                object_id=object_id,
                job=job,
                owner=owner,
                source=source,
                deleted=deleted,
            )
        if judgement.store:
            return judgement.mark  # stored unscanned, by the administrator's policy
        if verdict.signature:
            assert judgement.action is not None
            raise MfpsecError(
                ErrorCode.STORE_VIRUS_FOUND,
                signature=verdict.signature,
                job_action=judgement.action.value,
            )
        raise MfpsecError(ErrorCode.STORE_SCAN_FAILED, reason=verdict.failure)

    async def _delete_job(self, owner: str, job: str, subject: Subject) -> int:
        """A job with a virus is deleted (V-2): every object of it already stored."""
        doomed = [
            o for o in await self.objects(SYSTEM_REQUESTER) if o.owner == owner and o.job == job
        ]
        for o in doomed:
            with contextlib.suppress(MfpsecError):  # gone meanwhile
                await self.delete(o.id, SYSTEM_REQUESTER, subject, reason="virus")
        return len(doomed)

    def _unnamed(self) -> tuple[int, Path | None]:
        """A file with no name yet (O_TMPFILE: a crash leaves nothing); where the
        filesystem has none, a named one in tmp/, which the next start removes."""
        try:
            return os.open(self._objects, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600), None
        except OSError:
            path = self._tmp / f"{secrets.token_hex(8)}.part"
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path

    def _link(self, fd: int, tmp_path: Path | None, path: Path) -> None:
        dir_fd = os.open(self._objects, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if tmp_path is None:
                # linkat(AT_SYMLINK_FOLLOW) on the /proc magic link names an O_TMPFILE
                # file; a dir fd makes Python call linkat instead of link (which would not
                # follow the link and fail with EXDEV).
                os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=dir_fd, follow_symlinks=True)
            else:
                os.rename(tmp_path, path)
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # ---------------------------------------------------------------- read

    @contextlib.contextmanager
    def _key(self, object_id: str, row: tuple[object, ...]) -> Iterator[SecretBytes]:
        """The object's key, unsealed from (generation, nonce, sealed key)."""
        generation, nonce, sealed = row
        assert isinstance(nonce, bytes) and isinstance(sealed, bytes)
        with self._chain.open(
            int(str(generation)), _key_aad(object_id), nonce, sealed, f"object {object_id}"
        ) as key:
            yield key

    def _lock(self, object_id: str) -> asyncio.Lock:
        lock = self._locks.get(object_id)
        if lock is None:
            lock = self._locks[object_id] = asyncio.Lock()
        return lock

    async def read(
        self, object_id: str, requester: Requester, dst_fd: int, subject: Subject
    ) -> int:
        """The plaintext to dst_fd, after the whole object authenticated. → its size."""
        async with self._lock(object_id):
            found = await self._state.run(lambda conn: _sealed(conn, object_id))
            if not found or not requester.may_access(found[0][0].owner):
                raise MfpsecError(ErrorCode.STORE_OBJECT_NOT_FOUND, object=object_id)
            info, sealed = self._named(*found[0]), found[0][1]
            # FDP_ACF.1 / FAU_GEN.1: the stored job was output (printed, sent, copied to a
            # client), or failed to be: job.complete, with who and how much.
            async with self._auditor.event(EventType.JOB_COMPLETE, subject, object_id) as ev:
                ev.details.update(
                    how="output", job=info.job, kind=info.kind.value, owner=info.owner
                )
                size = await self._output(object_id, sealed[:3], requester, dst_fd, subject)
                ev.details["bytes"] = size
                ev.succeed()
                return size

    async def _output(
        self,
        object_id: str,
        sealed: tuple[object, ...],
        requester: Requester,
        dst_fd: int,
        subject: Subject,
    ) -> int:
        with self._key(object_id, sealed) as key:
            try:
                fd = os.open(self._objects / object_id, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise _io_error(object_id, exc) from None
            try:
                context = object_id.encode()
                try:
                    await self._pool.run(lambda: self._cipher.verify(key, context, fd, object_id))
                except MfpsecError as exc:
                    if exc.code is ErrorCode.STORE_INTEGRITY:
                        await self._auditor.record(
                            EventType.STORE_INTEGRITY,
                            Outcome.FAILURE,
                            subject,
                            object_id,
                            segment=int(exc.params["segment"]),
                        )
                    raise
                os.lseek(fd, 0, os.SEEK_SET)
                progress = self._cipher.progress()
                return await watched(
                    self._pool.run(
                        lambda: self._cipher.open(
                            key, context, fd, dst_fd, object_id, progress=progress
                        ),
                        requester.user,
                    ),
                    progress,
                    self._clock,
                    self.settings.transfers,
                    f"object {object_id}",
                )
            finally:
                os.close(fd)

    # ---------------------------------------------------------------- delete

    async def delete(
        self, object_id: str, requester: Requester, subject: Subject, reason: str = "request"
    ) -> ObjectInfo:
        async with self._lock(object_id):
            info = await self.info(object_id, requester)
            async with self._auditor.event(EventType.STORE_DELETE, subject, object_id) as ev:
                ev.details.update(
                    reason=reason,
                    owner=info.owner,
                    kind=info.kind.value,
                    job=info.job,
                    bytes=info.size,
                )
                await self._erase_keys([object_id])
                ev.details["method"] = "crypto-erase; " + await self._dispose(
                    self._objects / object_id
                )
                ev.succeed()
            if reason in _ENDS_THE_JOB:
                await self._auditor.record(
                    EventType.JOB_COMPLETE,
                    Outcome.SUCCESS,
                    subject,
                    object_id,
                    how=_ENDS_THE_JOB[reason],
                    job=info.job,
                    kind=info.kind.value,
                    owner=info.owner,
                )
        self._locks.pop(object_id, None)
        return info

    async def printed(self, object_id: str, requester: Requester, subject: Subject) -> ObjectInfo:
        """A secure-print or ID & Print job came out of the printer: deleted at once (S-1)."""
        info = await self.info(object_id, requester)
        if info.kind not in _HELD_FOR_PRINT:
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="object")
        return await self.delete(object_id, requester, subject, reason="printed")

    async def sweep(self) -> int:
        """Delete what the policies say is due. → how many."""
        now = self._clock.now().timestamp()
        due = await self._state.run(lambda conn: _due(conn, now))
        for info in due:
            reason = "retention" if info.kind in _RETAINED else "timeout"
            try:
                await self.delete(info.id, SYSTEM_REQUESTER, DAEMON, reason=reason)
            except MfpsecError as exc:
                if exc.code is not ErrorCode.STORE_OBJECT_NOT_FOUND:
                    raise
        return len(due)

    async def purge(self, subject: Subject) -> tuple[int, int]:
        """Crypto-erase everything at once, then overwrite the ciphertext. → (objects,
        bytes)."""
        async with self._auditor.event(EventType.STORE_PURGE, subject, "job store") as ev:
            objects = await self._state.run(_all)
            await self._erase_keys(None)
            methods: set[str] = set()
            for path in sorted(self._objects.iterdir()):
                methods.add(await self._dispose(path))
            ev.details.update(
                objects=len(objects),
                bytes=sum(o.size for o in objects),
                method="crypto-erase; " + "; ".join(sorted(methods)),
            )
            ev.succeed()
        self._locks.clear()
        return len(objects), sum(o.size for o in objects)

    async def _erase_keys(self, ids: list[str] | None) -> None:
        """The crypto-erase: overwrite the sealed keys in place, delete the rows (the
        database zeroes freed pages: secure_delete), and push it through the WAL."""
        async with self._chain.lock:

            def tx(conn: StateConnection) -> None:
                if ids is None:
                    conn.execute(
                        "UPDATE store_objects SET sealed_key = "
                        "zeroblob(length(sealed_key)), nonce = zeroblob(length(nonce)), "
                        "meta_sealed = zeroblob(length(meta_sealed))"
                    )
                    conn.execute("DELETE FROM store_objects")
                    return
                for object_id in ids:
                    conn.execute(
                        "UPDATE store_objects SET sealed_key = "
                        "zeroblob(length(sealed_key)), nonce = zeroblob(length(nonce)), "
                        "meta_sealed = zeroblob(length(meta_sealed)) "
                        "WHERE id = ?",
                        (object_id,),
                    )
                    conn.execute("DELETE FROM store_objects WHERE id = ?", (object_id,))

            await self._state.run(tx)
            await self._state.checkpoint()

    async def _dispose(self, path: Path) -> str:
        """Overwrite (HDD) and unlink a ciphertext file. → what was done."""
        if self.not_in_place:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return f"unlinked; {self.not_in_place}, so crypto-erase is the protection"
        try:
            return await self._job_data.overwrite(path, self.medium)
        except FileNotFoundError:
            return "already gone"
        except (OSError, MfpsecError) as exc:
            log.warning(
                "ciphertext not overwritten; removed at the next start",
                path=str(path),
                error=str(exc),
            )
            return f"overwrite failed ({exc}); retried at the next start"

    # ---------------------------------------------------------------- key rotation

    async def _reseal_batch(self, old: int, new: int, limit: int, reseal: Reseal) -> int:
        def read(conn: StateConnection) -> list[tuple[object, ...]]:
            return conn.execute(
                "SELECT id, nonce, sealed_key FROM store_objects "
                "WHERE generation = ? ORDER BY id LIMIT ?",
                (old, limit),
            ).fetchall()

        rows = await self._state.run(read)
        updates = []
        for object_id, nonce, sealed in rows:
            assert isinstance(nonce, bytes) and isinstance(sealed, bytes)
            new_nonce, new_sealed = reseal(
                old,
                new,
                SealedRecord(_key_aad(str(object_id)), nonce, sealed, f"object {object_id}"),
            )
            updates.append((new, new_nonce, new_sealed, str(object_id), old))

        def write(conn: StateConnection) -> None:
            for row in updates:
                conn.execute(
                    "UPDATE store_objects SET generation = ?, nonce = ?, "
                    "sealed_key = ? WHERE id = ? AND generation = ?",
                    row,
                )

        if updates:
            await self._state.run(write)
        return len(rows)


def _io_error(object_id: str, exc: OSError) -> MfpsecError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return MfpsecError(ErrorCode.STORE_FULL, object=object_id)
    return MfpsecError(ErrorCode.STORE_IO_ERROR, object=object_id, reason=exc.strerror or str(exc))


def _all(conn: StateConnection) -> list[ObjectInfo]:
    query = f"SELECT {_COLUMNS} FROM store_objects ORDER BY created_at, id"  # noqa: S608
    return [_info(r) for r in conn.execute(query).fetchall()]


def _one(conn: StateConnection, object_id: str) -> ObjectInfo | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM store_objects WHERE id = ?",  # noqa: S608
        (object_id,),
    ).fetchone()
    return None if row is None else _info(row)


def _sealed(conn: StateConnection, object_id: str) -> list[tuple[ObjectInfo, tuple[object, ...]]]:
    """Objects (one by id, or all) with what opens their names: (generation, nonce,
    sealed key, names nonce, sealed names)."""
    where, params = ("WHERE id = ?", (object_id,)) if object_id else ("", ())
    rows = conn.execute(
        f"SELECT {_COLUMNS}, generation, nonce, sealed_key, meta_nonce, "  # noqa: S608
        f"meta_sealed FROM store_objects {where} ORDER BY created_at, id",
        params,
    ).fetchall()
    return [(_info(tuple(r[:10])), tuple(r[10:])) for r in rows]


def _due(conn: StateConnection, now: float) -> list[ObjectInfo]:
    return [
        _info(r)
        for r in conn.execute(
            f"SELECT {_COLUMNS} FROM store_objects WHERE expires_at IS NOT NULL "  # noqa: S608
            "AND expires_at <= ? ORDER BY expires_at",
            (now,),
        ).fetchall()
    ]
