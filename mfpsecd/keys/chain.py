"""The key chain (K-1..K-4): TPM storage root key → RSA-2048 wrapping key (held by the
TPM; outside it only as the TPM-wrapped blob) → AES-256 master key (stored only
RSA-OAEP-wrapped) → secrets sealed with AES-256-GCM.

The wrapping key opens only while the firmware PCR (and any platform PCRs the board
names) hold the values it is bound to (core.pcr_policy): another OS booted on the
controller, or firmware that did not verify, cannot unwrap the master key. A firmware
update binds the same key to the measurement the new firmware will produce before it
names the new slot for boot (bind_next_boot); each binding is a row of key_bindings.

The master key is unwrapped once at start and kept XOR-shielded in memory (ShieldedKey):
unmasked only for the span of one seal or open, in a bytearray that is zeroed at once.

Every change to the chain is a sequence of SQLite transactions designed so that a power
cut between any two leaves a usable chain:
  rotation   1. new master generation stored as 'pending' (both generations unwrap)
             2. secrets re-sealed in batches, each batch one transaction
             3. old generation deleted and the new one made 'active' in one transaction
             A start-up that finds a 'pending' generation finishes steps 2-3.
  restore    the re-imported key's new blob replaces the old one in one transaction,
             only after it was shown to unwrap the active master key.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from mfpsecd.base import identity_keys
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.secret import SecretBytes, ShieldedKey
from mfpsecd.base.state import StateConnection, StateStore
from mfpsecd.keys.backup import BACKUP_COST, BackupFiles, BackupResult
from mfpsecd.keys.chain_rows import (
    ChainRows,
    binding_for,
    binding_key,
    fingerprint,
    insert_binding,
    load_chain,
    read_facts,
    set_fact,
    store_restored,
)
from mfpsecd.keys.model import identity_history
from mfpsecd.keys.model.identity_history import KnownIdentity, SignedLink
from mfpsecd.keys.model.pcr_policy import PcrBinding
from mfpsecd.keys.ports import KeyCrypto, PassphraseCost, Tpm, TpmKey
from mfpsecd.keys.rotation import (
    Reseal,
    Resealer,
    SealedRecord,
    activate,
    add_pending,
    move_records,
)

log = structlog.get_logger("mfpsecd.keys")


COMPONENT = "keys"
# The TPM hashes an OAEP label as a C string: keep the NUL.
MASTER_LABEL = b"mfpsecd master key v1\0"
MASTER_KEY_BYTES = 32
NONCE_BYTES = 12


class ChainState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    LOCKED = "locked"  # the keys exist but this TPM cannot unwrap them: restore needed
    DESTROYED = "destroyed"  # destroyed (decommission); a new chain is made at next start
    CLOSED = "closed"  # the daemon is stopping: the master keys are gone from memory


@dataclass(frozen=True)
class KeyFacts:
    state: ChainState
    reason: str
    software_keys: bool
    tpm_backend: str
    tpm_manufacturer: str
    tpm_firmware: str
    bound_to: str  # the PCR values the wrapping key opens under ("" for none)
    wrapping_fingerprint: str
    identity_fingerprint: str
    master_generation: int
    created_at: str
    rotated_at: str
    last_backup_at: str
    backups: int
    rotation_pending: bool


_IDENTITY_AAD = b"mfpsecd identity attestation v1\0"


class KeyChain:
    def __init__(
        self,
        store: StateStore,
        tpm: Tpm,
        crypto: KeyCrypto,
        clock: Clock,
        health: HealthRegistry,
        *,
        rotate_batch: int = 64,
        backup_cost: PassphraseCost = BACKUP_COST,
        min_passphrase: int = 12,
        firmware_pcr: int | None = None,
        platform_pcrs: tuple[int, ...] = (),
    ) -> None:
        self._store = store
        self._tpm = tpm
        self._crypto = crypto
        self._clock = clock
        self._health = health
        self._rotate_batch = rotate_batch
        self._backups = BackupFiles(tpm, crypto, backup_cost, min_passphrase)
        # Bound to the firmware's measurement (the board's [firmware] PCR) and to the
        # platform PCRs the board profile names.
        self._firmware_pcr = firmware_pcr
        self._pcrs = tuple(
            sorted(set(platform_pcrs) | (set() if firmware_pcr is None else {firmware_pcr}))
        )
        self._lock = asyncio.Lock()
        self._state = ChainState.STARTING
        # None: the chain existed before this start; True/False: this start created it
        # (or tried to): the keys.provision record.
        self.provisioned: bool | None = None
        self._cause: MfpsecError | None = None
        self._wrapping: TpmKey | None = None  # the binding in use
        self._wrapping_public = b""  # as first created: what backups and restores name
        self._wrapping_spki = b""
        self._identity: TpmKey | None = None
        self._identity_spki = b""
        self._identity_proven = b""  # the identity key the TPM has shown it holds
        self.restored_link = False  # whether the last restore linked the old identity
        self._masters: dict[int, ShieldedKey] = {}
        self._active = 0
        self._pending: int | None = None
        self._resealers: list[Resealer] = [self._reseal_attestation]

    # ---------------------------------------------------------------- state

    @property
    def state(self) -> ChainState:
        return self._state

    @property
    def lock(self) -> asyncio.Lock:
        """Held by every change to the chain or to the sealed secrets."""
        return self._lock

    def require_ready(self) -> None:
        if self._state is ChainState.READY:
            return
        if self._cause is not None:
            raise MfpsecError(self._cause.code, self._cause.message, **self._cause.params)
        raise MfpsecError(ErrorCode.KEYS_UNAVAILABLE, reason=f"key chain is {self._state.value}")

    def _set_state(self, state: ChainState, cause: MfpsecError | None = None) -> None:
        self._state, self._cause = state, cause
        info = self._tpm.info
        if state is ChainState.READY:
            if info.hardware_root:
                self._health.set(
                    COMPONENT,
                    HealthState.OK,
                    f"TPM ({info.backend}, {info.manufacturer}), "
                    f"master key generation {self._active}",
                )
            else:
                self._health.set(
                    COMPONENT,
                    HealthState.DEGRADED,
                    "software keys: no TPM on this board, keys are protected "
                    "only by file permissions",
                )
        else:
            reason = cause.params.get("reason") or cause.message if cause else state.value
            self._health.set(COMPONENT, HealthState.FAILED, f"{state.value}: {reason}")

    # ---------------------------------------------------------------- start-up

    async def start(self) -> None:
        """Provision a new chain, or unwrap the stored one. Never raises for a chain that
        this TPM cannot open: the chain is LOCKED (fail closed) and status says why."""
        if not self._tpm.info.hardware_root:
            log.warning("keys_software_mode", reason="board has no TPM (tpm.backend = none)")
        rows = await self._store.run(load_chain)
        if rows.wrapping is None:
            await self._provision()
            return
        self._wrapping, self._identity = rows.wrapping, rows.identity
        self._wrapping_public = rows.wrapping.public
        self._wrapping_spki = await self._tpm.public_key_der(rows.wrapping)
        if rows.identity is not None:
            self._identity_spki = await self._tpm.public_key_der(rows.identity)
        try:
            measured = await self._measured()
            if rows.bindings:
                self._refuse_unmeasured(measured)
            wrapping = binding_for(rows, measured)
            self._wrapping = wrapping
            for generation, status, wrapped in rows.masters:
                key = await self._tpm.decrypt(wrapping, wrapped, MASTER_LABEL)
                self._masters[generation] = ShieldedKey(key)
                if status == "active":
                    self._active = generation
                else:
                    self._pending = generation
        except MfpsecError as exc:
            self._lock_out(exc)
            return
        self._set_state(ChainState.READY)
        if self._wrapping.binding is None:
            await self._bind_unbound(measured)
        if self._pending is not None:
            log.info("keys_rotation_resume", generation=self._pending)
            async with self._lock:
                try:
                    await self._finish_rotation()
                except MfpsecError as exc:
                    # A damaged record blocks the rotation, not the chain: every record
                    # still opens under its own generation until the admin deletes it.
                    log.error("keys_rotation_blocked", error=exc.code.wire_name, **exc.params)
        await self._keep_attestation()
        log.info(
            "keys_ready",
            generation=self._active,
            tpm=self._tpm.info.backend,
            fingerprint=fingerprint(self._wrapping_spki)[:16],
        )

    async def _keep_attestation(self) -> None:
        """At start: the identity on record is attested (or proven and attested now; a
        chain from before attestations gets one here)."""
        row = await self._store.run(
            lambda conn: conn.execute(
                "SELECT generation, nonce, sealed FROM identity_attestation"
            ).fetchone()
        )
        if self._attested(row, self._masters) != fingerprint(self._identity_spki):
            await self._attest_identity()

    def fail(self, exc: MfpsecError) -> None:
        """The TPM could not be opened at all: locked until the daemon is restarted."""
        self._lock_out(exc)

    def _lock_out(self, exc: MfpsecError) -> None:
        self._forget_masters()
        if exc.code is ErrorCode.KEY_INTEGRITY and exc.params.get("object") == "wrapping key":
            cause = MfpsecError(
                ErrorCode.KEYS_UNAVAILABLE,
                reason="this TPM cannot load the wrapping key (TPM replaced or cleared): "
                "restore the key backup",
            )
        else:
            cause = exc
        log.error("keys_locked", error=exc.code.wire_name, **exc.params)
        self._set_state(ChainState.LOCKED, cause)

    async def _measured(self) -> PcrBinding:
        """The bound PCRs' values now (none in software-key mode)."""
        values: dict[int, bytes] = {}
        if self._tpm.info.hardware_root:
            for pcr in self._pcrs:
                value = await self._tpm.pcr_read(pcr)
                if value is None:
                    return PcrBinding((), ())
                values[pcr] = value
        return PcrBinding.of(values)

    def _refuse_unmeasured(self, measured: PcrBinding) -> None:
        """Keys are bound only to a measured boot: an empty firmware PCR means the boot
        verification did not run (or failed) at this power-on."""
        if self._firmware_pcr in measured.pcrs and not any(
            measured.values[measured.pcrs.index(self._firmware_pcr)]
        ):
            raise MfpsecError(
                ErrorCode.KEYS_UNAVAILABLE,
                reason=f"no firmware was measured into PCR {self._firmware_pcr} at this "
                f"boot (the boot verification did not run or failed): the keys "
                f"are bound only to verified firmware",
            )

    async def _bind_unbound(self, measured: PcrBinding) -> None:
        """A chain from before PCR binding (its wrapping key opened by an empty auth
        value) is bound to this boot's measurement, and the unbound blob erased."""
        assert self._wrapping is not None
        try:
            self._refuse_unmeasured(measured)
        except MfpsecError as exc:
            log.warning("keys_left_unbound", reason=exc.params["reason"])
            return
        with await self._tpm.export_key(self._wrapping) as sensitive:
            bound = await self._tpm.import_key(self._wrapping_public, sensitive, measured)
        now = rfc3339(self._clock)

        def tx(conn: StateConnection) -> None:
            insert_binding(conn, bound, "bound at start (key from before PCR binding)", now)
            conn.execute(
                "UPDATE tpm_keys SET private = zeroblob(length(private)) WHERE role = 'wrapping'"
            )
            conn.execute("UPDATE tpm_keys SET private = X'' WHERE role = 'wrapping'")

        await self._store.run(tx)
        await self._store.checkpoint()  # the unbound blob leaves the WAL too
        await self._tpm.forget(self._wrapping)
        self._wrapping = bound
        log.info("keys_bound", to=measured.describe())

    async def bind_next_boot(self, pcr: int, value: bytes, purpose: str) -> bool:
        """Before a firmware update names the new slot for boot: bind the wrapping key
        also to the value the boot verification will measure into `pcr` for it. Keeps
        the running firmware's binding (the fallback slot) and drops any other.
        → whether a binding was made (False where nothing is bound to that PCR)."""
        async with self._lock:
            if self._state is not ChainState.READY:
                # Locked (a replaced TPM, unverified firmware): nothing opens now to
                # bind; the restore after the switch binds to what then boots.
                log.warning("keys_not_bound_for_next_boot", state=self._state.value)
                return False
            running = self._wrapping
            current = running.binding if running is not None else None
            if (
                running is None
                or current is None
                or pcr != self._firmware_pcr
                or pcr not in current.pcrs
                or not self._tpm.info.hardware_root
            ):
                return False
            target = current.replacing(pcr, value)
            key = running
            if target != current:
                with await self._tpm.export_key(running) as sensitive:
                    key = await self._tpm.import_key(self._wrapping_public, sensitive, target)
                await self._tpm.forget(key)
            now = rfc3339(self._clock)

            def tx(conn: StateConnection) -> None:
                conn.execute(
                    "DELETE FROM key_bindings WHERE NOT (pcrs = ? AND pcr_values = ?)",
                    binding_key(current),
                )
                if key is not running:
                    insert_binding(conn, key, purpose, now)

            await self._store.run(tx)
            log.info("keys_bound_for_next_boot", to=target.describe(), purpose=purpose)
            return True

    async def _backup_spki(self, public: bytes) -> bytes:
        try:
            return await self._tpm.public_key_der(TpmKey(public, b""))
        except MfpsecError:
            raise MfpsecError(
                ErrorCode.BACKUP_INVALID, reason="its public key is unreadable"
            ) from None

    async def _provision(self) -> None:
        measured = await self._measured()
        try:
            self._refuse_unmeasured(measured)
        except MfpsecError as exc:
            self.provisioned = False
            self._lock_out(exc)
            return
        wrapping = await self._tpm.create_wrapping_key(measured)
        spki = await self._tpm.public_key_der(wrapping)
        identity = await self._tpm.create_signing_key()
        identity_spki = await self._tpm.public_key_der(identity)
        master = SecretBytes.random(MASTER_KEY_BYTES)
        try:
            wrapped = self._crypto.wrap(spki, MASTER_LABEL, master)
        finally:
            shield = ShieldedKey(master)  # closes master
        now = rfc3339(self._clock)
        backend = self._tpm.info.backend

        def tx(conn: StateConnection) -> None:
            for role, key, der in (
                ("wrapping", TpmKey(wrapping.public, b""), spki),
                ("identity", identity, identity_spki),
            ):
                conn.execute(
                    "INSERT INTO tpm_keys (role, backend, public, private, fingerprint, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (role, backend, key.public, key.private, fingerprint(der), now),
                )
            insert_binding(conn, wrapping, "created", now)
            conn.execute(
                "INSERT INTO master_keys (generation, status, wrapped, created_at) "
                "VALUES (1, 'active', ?, ?)",
                (wrapped, now),
            )
            set_fact(conn, "created_at", now)

        await self._store.run(tx)
        self._wrapping, self._wrapping_spki = wrapping, spki
        self._wrapping_public = wrapping.public
        self._identity, self._identity_spki = identity, identity_spki
        self._masters, self._active = {1: shield}, 1
        self.provisioned = True
        self._set_state(ChainState.READY)
        await self._attest_identity()
        log.info(
            "keys_provisioned",
            tpm=backend,
            fingerprint=fingerprint(spki)[:16],
            identity=fingerprint(identity_spki)[:16],
            bound_to=measured.describe(),
        )

    # ---------------------------------------------------------------- sealing

    @property
    def active_generation(self) -> int:
        return self._active

    def seal(self, aad: bytes, plaintext: SecretBytes) -> tuple[int, bytes, bytes]:
        """→ (generation, nonce, ciphertext||tag) under the active master key."""
        self.require_ready()
        return (self._active, *self._seal_with(self._active, aad, plaintext))

    def _seal_with(
        self, generation: int, aad: bytes, plaintext: SecretBytes
    ) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: far below 2^32 seals per key
        with self._masters[generation].unshielded() as key:
            return nonce, self._crypto.seal(key, nonce, aad, plaintext.view())

    def open(
        self, generation: int, aad: bytes, nonce: bytes, sealed: bytes, what: str
    ) -> SecretBytes:
        self.require_ready()
        master = self._masters.get(generation)
        if master is None:
            raise MfpsecError(ErrorCode.KEY_INTEGRITY, object=what)
        with master.unshielded() as key:
            try:
                return self._crypto.open(key, nonce, aad, sealed)
            except MfpsecError as exc:
                if exc.code is ErrorCode.KEY_INTEGRITY:
                    raise MfpsecError(ErrorCode.KEY_INTEGRITY, object=what) from None
                raise

    # ---------------------------------------------------------------- rotation

    def add_resealer(self, resealer: Resealer) -> None:
        """Someone whose sealed records a rotation must re-seal (the secret store, the job
        store): all of them are moved before the old master key is deleted."""
        self._resealers.append(resealer)

    async def rotate(self) -> int:
        """A new master key; every secret re-sealed under it. → the new generation."""
        async with self._lock:
            self.require_ready()
            if self._pending is None:
                master = SecretBytes.random(MASTER_KEY_BYTES)
                try:
                    wrapped = self._crypto.wrap(self._wrapping_spki, MASTER_LABEL, master)
                finally:
                    shield = ShieldedKey(master)
                generation, now = self._active + 1, rfc3339(self._clock)
                await self._store.run(lambda conn: add_pending(conn, generation, wrapped, now))
                self._masters[generation], self._pending = shield, generation
            await self._finish_rotation()
            return self._active

    async def _finish_rotation(self) -> None:
        assert self._pending is not None
        old, new = self._active, self._pending
        moved = await move_records(
            self._resealers, old, new, self._rotate_batch, self._reseal_record
        )
        now = rfc3339(self._clock)
        await self._store.run(lambda conn: activate(conn, old, new, now))
        await self._store.checkpoint()  # the old wrapped key leaves the WAL too
        self._masters.pop(old).close()
        self._active, self._pending = new, None
        if self._state is ChainState.READY:
            self._set_state(ChainState.READY)
        log.info("keys_rotated", generation=new, records=moved)

    def _reseal_record(self, old: int, new: int, record: SealedRecord) -> tuple[bytes, bytes]:
        master = self._masters[old]
        with master.unshielded() as key:
            try:
                plain = self._crypto.open(key, record.nonce, record.aad, record.sealed)
            except MfpsecError:
                raise MfpsecError(ErrorCode.KEY_INTEGRITY, object=record.what) from None
        with plain:
            return self._seal_with(new, record.aad, plain)

    # ---------------------------------------------------------------- identity

    @property
    def identity_public_der(self) -> bytes:
        self.require_ready()
        return self._identity_spki

    async def sign_digest(self, digest: bytes) -> bytes:
        self.require_ready()
        assert self._identity is not None
        return await self._tpm.sign_digest(self._identity, digest)

    async def _link_identity(
        self, new: TpmKey, new_spki: bytes, at: str, by: str
    ) -> SignedLink | None:
        """The new identity's link to the one it replaces, signed by the new key."""
        if not self._identity_spki or self._identity_spki == new_spki:
            return None
        rows = await self._store.run(
            lambda conn: conn.execute("SELECT seq FROM identity_links").fetchall()
        )
        link = identity_history.new_link(
            seq=max((int(str(r[0])) for r in rows), default=0) + 1,
            previous_spki=self._identity_spki,
            spki=new_spki,
            at=at,
            reason="key backup restored onto a replacement TPM",
            by=by,
        )
        digest = hashlib.sha256(identity_history.canonical(link)).digest()
        signature = await self._tpm.sign_digest(new, digest)
        return SignedLink(link, signature.hex())

    async def _prove_identity(self) -> bool:
        """Whether the TPM holds the private half of the identity public key on record
        (it signs a fresh challenge): the key rows are on a disk someone else may
        control. Remembered once proven."""
        assert self._identity is not None
        spki = self._identity_spki
        if self._identity_proven != spki:
            challenge = hashlib.sha256(os.urandom(32)).digest()
            signature = await self._tpm.sign_digest(self._identity, challenge)
            if not identity_keys.verifies_digest(spki, signature, challenge):
                return False
            self._identity_proven = spki
        return True

    async def _attest_identity(self) -> None:
        """Seal the proven identity's fingerprint under the master key: a later restore
        (onto a new TPM, when the old key can no longer show anything) vouches in the
        identity history only for the identity this records, not for whatever public
        key the disk holds by then."""
        if self._identity is None or not await self._prove_identity():
            log.error("identity_not_attested", reason="the TPM does not hold that key")
            return
        fp = fingerprint(self._identity_spki).encode()
        generation, nonce, sealed = self.seal(_IDENTITY_AAD, SecretBytes(bytearray(fp)))
        await self._store.run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO identity_attestation (id, generation, nonce, sealed) "
                "VALUES (1, ?, ?, ?)",
                (generation, nonce, sealed),
            )
        )

    def _attested(self, row: tuple[object, ...] | None, masters: dict[int, ShieldedKey]) -> str:
        """The attested identity fingerprint, opened with the (restored) master keys; ""
        when there is none or it does not open."""
        if row is None:
            return ""
        generation, nonce, sealed = row
        master = masters.get(int(str(generation)))
        if master is None or not isinstance(nonce, bytes) or not isinstance(sealed, bytes):
            return ""
        with master.unshielded() as key:
            try:
                plain = self._crypto.open(key, nonce, _IDENTITY_AAD, sealed)
            except MfpsecError:
                return ""
        with plain:
            return bytes(plain.view()).decode("ascii", "replace")

    async def _reseal_attestation(self, old: int, new: int, limit: int, reseal: Reseal) -> int:
        row = await self._store.run(
            lambda conn: conn.execute(
                "SELECT nonce, sealed FROM identity_attestation WHERE generation = ?", (old,)
            ).fetchone()
        )
        if row is None:
            return 0
        old_nonce, old_sealed = row
        assert isinstance(old_nonce, bytes) and isinstance(old_sealed, bytes)
        nonce, sealed = reseal(
            old, new, SealedRecord(_IDENTITY_AAD, old_nonce, old_sealed, "identity attestation")
        )
        await self._store.run(
            lambda conn: conn.execute(
                "UPDATE identity_attestation SET generation = ?, nonce = ?, sealed = ? "
                "WHERE generation = ?",
                (new, nonce, sealed, old),
            )
        )
        return 1

    async def identities(self) -> list[KnownIdentity]:
        """This device's identity keys, the current one first, each earlier one proven by
        a link from a later one. The current public key is trusted only once the TPM
        has shown it holds its private half (a signature made now)."""
        self.require_ready()
        assert self._identity is not None
        spki = self._identity_spki
        if not await self._prove_identity():
            raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="identity key")
        rows = await self._store.run(
            lambda conn: conn.execute("SELECT document FROM identity_links ORDER BY seq").fetchall()
        )
        links = []
        for (document,) in rows:
            try:
                links.append(identity_history.decode(str(document)))
            except (ValueError, TypeError):
                log.error("identity_link_unreadable")
        return identity_history.trusted(spki, links)

    # ---------------------------------------------------------------- backup/restore

    async def backup(self, passphrase: SecretBytes, target: Path) -> BackupResult:
        self._backups.check(passphrase, target)
        async with self._lock:
            self.require_ready()
            assert self._wrapping is not None
            now = rfc3339(self._clock)
            result = await self._backups.write(
                passphrase,
                target,
                wrapping=self._wrapping,
                public=self._wrapping_public,
                device_fingerprint=fingerprint(self._wrapping_spki),
                now=now,
            )

            def tx(conn: StateConnection) -> None:
                set_fact(conn, "last_backup_at", now)
                row = conn.execute("SELECT value FROM key_facts WHERE key = 'backups'").fetchone()
                set_fact(conn, "backups", str(int(str(row[0])) + 1 if row else 1))

            await self._store.run(tx)
            log.info(
                "keys_backup_written", path=str(result.path), fingerprint=result.fingerprint[:16]
            )
            return result

    async def restore(self, passphrase: SecretBytes, source: Path, by: str = "system") -> str:
        """Re-import the backed-up wrapping key into this TPM. → its fingerprint. The
        new identity key signs a link naming the old one (model.identity_history), in the
        same transaction, so the certificates signed before stay this device's."""
        async with self._lock:
            if self._state is ChainState.READY:
                raise MfpsecError(ErrorCode.RESTORE_NOT_NEEDED)
            if self._state is not ChainState.LOCKED or self._wrapping is None:
                raise MfpsecError(
                    ErrorCode.KEYS_UNAVAILABLE, reason=f"key chain is {self._state.value}"
                )
            ours = fingerprint(self._wrapping_spki)
            sensitive = await self._backups.open(
                passphrase, source, ours=ours, same_key=self._same_wrapping_key
            )
            measured = await self._measured()
            with sensitive:
                self._refuse_unmeasured(measured)
                key = await self._tpm.import_key(self._wrapping_public, sensitive, measured)
            rows = await self._store.run(load_chain)
            masters = await self._unwrap_masters(key, rows)
            vouched = await self._identity_vouched(masters)
            identity = await self._tpm.create_signing_key()
            identity_spki = await self._tpm.public_key_der(identity)
            now = rfc3339(self._clock)
            link = await self._link_identity(identity, identity_spki, now, by) if vouched else None
            self.restored_link = link is not None  # for the audit record
            backend = self._tpm.info.backend
            await self._store.run(
                lambda conn: store_restored(
                    conn,
                    link,
                    key=key,
                    identity=identity,
                    identity_spki=identity_spki,
                    backend=backend,
                    now=now,
                )
            )
            self._wrapping = key
            self._identity, self._identity_spki = identity, identity_spki
            self._masters = masters
            for generation, status, _ in rows.masters:
                if status == "active":
                    self._active = generation
                else:
                    self._pending = generation
            if self._pending is not None:
                await self._finish_rotation()
            self._set_state(ChainState.READY)
            await self._attest_identity()  # the new identity, for the next restore
            log.info("keys_restored", fingerprint=ours[:16], identity_linked=link is not None)
            return ours

    async def _same_wrapping_key(self, public: bytes) -> bool:
        # The public area may carry another binding's policy: the key is the same when
        # the public key is.
        return await self._backup_spki(public) == self._wrapping_spki

    async def _unwrap_masters(self, key: TpmKey, rows: ChainRows) -> dict[int, ShieldedKey]:
        """Every master key generation, unwrapped by the restored key; none if any fails."""
        masters: dict[int, ShieldedKey] = {}
        try:
            for generation, _, wrapped in rows.masters:
                masters[generation] = ShieldedKey(
                    await self._tpm.decrypt(key, wrapped, MASTER_LABEL)
                )
        except MfpsecError as exc:
            for m in masters.values():
                m.close()
            await self._tpm.forget(key)
            raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="wrapped master key") from exc
        return masters

    async def _identity_vouched(self, masters: dict[int, ShieldedKey]) -> bool:
        """The old identity died with the old TPM; the disk's record of its public key is
        vouched for only if the attestation the restored keys open says so."""
        attestation = await self._store.run(
            lambda conn: conn.execute(
                "SELECT generation, nonce, sealed FROM identity_attestation"
            ).fetchone()
        )
        vouched = bool(self._identity_spki) and self._attested(attestation, masters) == fingerprint(
            self._identity_spki
        )
        if not vouched:
            log.warning(
                "identity_link_unproven", reason="the identity on record is not the one attested"
            )
        return vouched

    # ---------------------------------------------------------------- destruction

    async def destroy(self, eraser: Callable[[StateConnection], None]) -> None:
        """Decommission (K-4): flush the TPM's copies, overwrite and delete every wrapped
        blob and sealed record (eraser does the records of other services in the same
        transaction), zero the in-memory keys. A new chain is provisioned at next start."""
        async with self._lock:
            if self._state is ChainState.DESTROYED:  # two calls raced past their checks
                raise MfpsecError(ErrorCode.KEYS_UNAVAILABLE, reason="keys already destroyed")
            for key in (self._wrapping, self._identity):
                if key is not None:
                    await self._tpm.forget(key)

            def tx(conn: StateConnection) -> None:
                eraser(conn)
                # secure_delete=ON zeroes freed pages; overwrite the blobs first anyway so
                # no page keeps them whatever the page allocator does.
                conn.execute(
                    "UPDATE tpm_keys SET private = zeroblob(length(private)), "
                    "public = zeroblob(length(public))"
                )
                conn.execute("UPDATE master_keys SET wrapped = zeroblob(length(wrapped))")
                conn.execute("UPDATE key_bindings SET private = zeroblob(length(private))")
                conn.execute("DELETE FROM key_bindings")
                # The identity history goes too: the next start makes a new identity
                # that vouches for none of the destroyed ones.
                conn.execute("DELETE FROM identity_attestation")
                conn.execute("DELETE FROM identity_links")
                conn.execute("DELETE FROM master_keys")
                conn.execute("DELETE FROM tpm_keys")
                conn.execute("DELETE FROM key_facts")

            await self._store.run(tx)
            await self._store.checkpoint()
            self._forget_masters()
            # Nothing of the destroyed chain is reported any more: a status read after
            # this shows no key, and a second destruction has no fingerprint to confirm.
            self._wrapping = self._identity = None
            self._wrapping_spki = self._identity_spki = b""
            self._active, self._pending = 0, None
            self._set_state(
                ChainState.DESTROYED,
                MfpsecError(
                    ErrorCode.KEYS_UNAVAILABLE, reason="keys destroyed; restart to create new ones"
                ),
            )
            log.warning("keys_destroyed")

    def _forget_masters(self) -> None:
        for m in self._masters.values():
            m.close()
        self._masters.clear()

    async def close(self) -> None:
        """Forget the master keys. A caller still holding the chain afterwards gets
        KEYS_UNAVAILABLE, not a lookup failure that would read as tampered data."""
        async with self._lock:  # a rotation or restore in flight finishes first
            self._forget_masters()
            self._state = ChainState.CLOSED
            self._cause = MfpsecError(
                ErrorCode.KEYS_UNAVAILABLE, reason="key chain is closed: the daemon is stopping"
            )

    # ---------------------------------------------------------------- status

    async def facts(self) -> KeyFacts:
        facts = await self._store.run(read_facts)
        info = self._tpm.info
        reason = ""
        if self._cause is not None:
            reason = str(self._cause.params.get("reason") or self._cause.message)
        return KeyFacts(
            state=self._state,
            reason=reason,
            software_keys=not info.hardware_root,
            tpm_backend=info.backend,
            tpm_manufacturer=info.manufacturer,
            tpm_firmware=info.firmware,
            bound_to=(
                self._wrapping.binding.describe()
                if self._wrapping is not None
                and self._wrapping.binding is not None
                and self._wrapping.binding.pcrs
                else ""
            ),
            wrapping_fingerprint=fingerprint(self._wrapping_spki) if self._wrapping_spki else "",
            identity_fingerprint=fingerprint(self._identity_spki) if self._identity_spki else "",
            master_generation=self._active,
            created_at=facts.get("created_at", ""),
            rotated_at=facts.get("rotated_at", ""),
            last_backup_at=facts.get("last_backup_at", ""),
            backups=int(facts.get("backups", "0")),
            rotation_pending=self._pending is not None,
        )
