"""The firmware service: A/B slots, verification at boot, update, anti-rollback, the
administrator's rewrite lock (SPEC F-1..F-4, B-1).

Slots are directories `a/` and `b/` under the board's slots directory, each holding a
signed bundle as written at update. The boot state (core.fw_slots) sits next to them in
`bootstate.json`, always replaced atomically. Order is what makes a power cut harmless:

- update: the target slot is first taken out of the boot order, the bundle is read into
  `<slot>.incoming` (signature and manifest checked before the tree is read), verified in
  full, flushed, renamed into place, and only then named as the slot to try;
- boot (`mfpsecd fw-verify --boot`): an attempt is spent before the slot is tried; the
  slot that verifies is measured into the PCR and described in a boot record in the run
  directory; if it does not, the other slot is tried;
- the daemon, once up on a trial slot that verified, commits it and only then raises the
  anti-rollback counter (a TPM NV counter, which can only go up) to its security epoch.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import msgspec
import structlog
from cryptography import x509

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Outcome, Subject
from mfpsecd.audit.model import setting_changes
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, utc_text
from mfpsecd.base.durable import fsync_dir, replace_file
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateStore
from mfpsecd.base.transfer import DEFAULT_LIMITS, Progress, TransferLimits, WorkerPool, watched
from mfpsecd.firmware import archive as fw_archive
from mfpsecd.firmware.bundle import VerifiedImage, verify_bundle, verify_header
from mfpsecd.firmware.model import manifest as fw_manifest
from mfpsecd.firmware.model import slots as fw_slots
from mfpsecd.firmware.model.signature import ClockCheck, Signed
from mfpsecd.firmware.ports import TreeHasher
from mfpsecd.keys.model.pcr_policy import extended
from mfpsecd.keys.ports import Tpm

log = structlog.get_logger("mfpsecd.firmware")

BOOT_STATE = "bootstate.json"
BOOT_RECORD = "firmware-boot.json"
_ZERO_PCR = bytes(32)

# (pcr, the value the boot verification will measure for the new firmware, purpose) →
# whether keys were bound (the key chain's bind_next_boot).
BindNextBoot = Callable[[int, bytes, str], Awaitable[bool]]


@dataclass(frozen=True)
class FirmwareSettings:
    model: str
    roots: tuple[x509.Certificate, ...]
    slots_dir: Path
    run_dir: Path  # the boot record: cleared at every power-on on a device (tmpfs)
    counter_index: int
    pcr: int
    boot_tries: int
    max_bundle_bytes: int
    # The simulated board's swtpm restarts with the daemon (a TPM reset): the daemon then
    # replays the boot measurement. A device's TPM keeps it from power-on.
    replay_measurement: bool = False
    # An archive read from a client's descriptor is abandoned when it stalls.
    transfers: TransferLimits = DEFAULT_LIMITS
    # Revoked signing or intermediate certificates (core.fw_signature).
    crls: tuple[x509.CertificateRevocationList, ...] = ()


class BootRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What the boot verification found, for the daemon and `mfpsec fw status`."""

    result: Literal["verified", "failed"]
    at: str
    mode: str  # the security mode it ran in
    slot: str = ""  # the slot that verified and boots
    trial: bool = False  # a newly written slot on trial
    version: str = ""
    epoch: int = 0
    digest: str = ""  # manifest SHA-256 extended into the PCR
    pcr: int = 0
    pcr_value: str = ""  # the PCR right after the extension ("" without a TPM)
    pcr_before: str = ""  # ... and right before it: what an update predicts from
    error: str = ""  # wire name of the first failure
    reason: str = ""  # every failure, slot by slot


@dataclass(frozen=True)
class SlotView:
    name: str
    # committed, trial, failed, retired (epoch below the floor), written (inactive, not
    # pending), empty, invalid
    state: str
    version: str
    epoch: int
    digest: str


@dataclass(frozen=True)
class FirmwareView:
    model: str
    active: str
    pending: str
    tries: int
    booted: BootRecord | None
    counter: int | None  # the anti-rollback floor (None: not readable)
    locked: bool
    locked_by: str
    locked_at: str
    slots: list[SlotView]
    failed: str
    failed_reason: str


def _describe(exc: MfpsecError) -> str:
    detail = ", ".join(f"{k}={v}" for k, v in exc.params.items() if v not in ("", None))
    return f"{exc.code.wire_name}({detail})" if detail else exc.code.wire_name


def _remove_tree(path: Path) -> None:
    """A slot or staging directory, whatever modes its vendor gave it."""
    if not os.path.lexists(path):
        return
    for top, dirs, _files in os.walk(path, followlinks=False):
        for d in dirs:
            full = os.path.join(top, d)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    os.chmod(path, 0o700)
    shutil.rmtree(path)


def load_boot_record(run_dir: Path) -> BootRecord | None:
    """This power-on's boot record; None when the boot unit did not run (or wrote
    something unreadable, which counts the same)."""
    try:
        return msgspec.json.decode((run_dir / BOOT_RECORD).read_bytes(), type=BootRecord)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        log.error("firmware_boot_record_unreadable", reason=str(exc))
        return None


class FirmwareService:
    def __init__(
        self,
        settings: FirmwareSettings,
        *,
        tpm: Tpm,
        hasher: TreeHasher,
        clock: Clock,
        auditor: Auditor,
        state: StateStore,
        bind_next_boot: BindNextBoot | None = None,
    ) -> None:
        self.settings = settings
        self._bind_next_boot = bind_next_boot
        self._tpm = tpm
        self._hasher = hasher
        self._clock = clock
        self._auditor = auditor
        self._state = state
        self._busy = asyncio.Lock()
        self._pool = WorkerPool("firmware", 2)

    # ---- storage

    @property
    def _dir(self) -> Path:
        return self.settings.slots_dir

    def slot_path(self, slot: str) -> Path:
        return self._dir / slot

    def boot_state(self) -> fw_slots.BootState:
        """The stored boot state; a missing one is the factory state (slot a)."""
        try:
            raw = (self._dir / BOOT_STATE).read_bytes()
        except FileNotFoundError:
            return fw_slots.BootState()
        try:
            return fw_slots.check(msgspec.json.decode(raw, type=fw_slots.BootState))
        except (msgspec.DecodeError, ValueError) as exc:
            # Fail safe: boot the factory slot order; verification decides what runs.
            log.error("firmware_bootstate_corrupt", reason=str(exc))
            return fw_slots.BootState()

    def _store_state(self, state: fw_slots.BootState) -> None:
        self._dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        replace_file(self._dir / BOOT_STATE, msgspec.json.encode(state))

    def boot_record(self) -> BootRecord | None:
        return load_boot_record(self.settings.run_dir)

    # ---- the anti-rollback counter

    async def counter(self) -> int:
        """The security epoch floor: the NV counter (defined at first use; it starts at 1)."""
        try:
            value = await self._tpm.counter_read(self.settings.counter_index)
            if value is None:
                await self._tpm.counter_define(self.settings.counter_index)
                value = await self._tpm.counter_read(self.settings.counter_index)
        except MfpsecError as exc:
            raise MfpsecError(
                ErrorCode.FIRMWARE_UNAVAILABLE, reason=f"anti-rollback counter: {exc.message}"
            ) from None
        if value is None:
            raise MfpsecError(
                ErrorCode.FIRMWARE_UNAVAILABLE, reason="anti-rollback counter could not be defined"
            )
        return value

    async def _raise_counter(self, value: int, epoch: int) -> int:
        """From its current value up to epoch (an NV counter only counts up by one)."""
        while value < epoch:
            value = await self._tpm.counter_increment(self.settings.counter_index)
        return value

    # ---- verification

    def _verify(self, bundle: Path, minimum: int, clock: ClockCheck) -> VerifiedImage:
        return verify_bundle(
            bundle,
            roots=list(self.settings.roots),
            hasher=self._hasher,
            model=self.settings.model,
            minimum_epoch=minimum,
            clock=clock,
            now=self._clock.now(),
            crls=self.settings.crls,
        )

    async def boot(self, mode: str) -> BootRecord:
        """Pick the slot to boot, verify it (or else the other one), measure it and
        write the boot record. Installed slots are verified without the certificate
        validity check (ClockCheck.IGNORE): the clock may be unset this early, and the
        signature's time was checked when the slot was written."""
        state = self.boot_state()
        choice = fw_slots.choose(state)
        if choice.state != state:
            self._store_state(choice.state)  # the attempt is spent before it is made
        at = utc_text(self._clock.now())
        try:
            minimum = await self.counter()
        except MfpsecError as exc:
            record = BootRecord(
                result="failed", at=at, mode=mode, error=exc.code.wire_name, reason=_describe(exc)
            )
            return await self._finish_boot(record)
        failures: list[str] = []
        first_error = ""
        for slot in (choice.slot, fw_slots.other(choice.slot)):
            try:
                img = await self._pool.call(
                    self._verify, self.slot_path(slot), minimum, ClockCheck.IGNORE
                )
            except MfpsecError as exc:
                failures.append(f"slot {slot}: {_describe(exc)}")
                first_error = first_error or exc.code.wire_name
                continue
            if slot != choice.slot:
                why = failures[0]
                self._store_state(
                    fw_slots.trial_failed(choice.state, why)
                    if choice.trial
                    else fw_slots.fallback(choice.state, choice.slot, why)
                )
            before = await self._tpm.pcr_read(self.settings.pcr)
            value = await self._tpm.pcr_extend(self.settings.pcr, img.digest)
            record = BootRecord(
                result="verified",
                at=at,
                mode=mode,
                slot=slot,
                trial=choice.trial and slot == choice.slot,
                version=img.manifest.version,
                epoch=img.manifest.epoch,
                digest=img.digest.hex(),
                pcr=self.settings.pcr,
                pcr_value="" if value is None else value.hex(),
                pcr_before="" if before is None else before.hex(),
                error=first_error,
                reason="; ".join(failures),
            )
            return await self._finish_boot(record)
        return await self._finish_boot(
            BootRecord(
                result="failed", at=at, mode=mode, error=first_error, reason="; ".join(failures)
            )
        )

    async def _finish_boot(self, record: BootRecord) -> BootRecord:
        self.settings.run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        replace_file(self.settings.run_dir / BOOT_RECORD, msgspec.json.encode(record))
        ok = record.result == "verified" and not record.error
        await self._auditor.record(
            EventType.FIRMWARE_VERIFY,
            Outcome.SUCCESS if ok else Outcome.FAILURE,
            DAEMON,
            f"slot {record.slot}" if record.slot else "firmware",
            when="boot",
            mode=record.mode,
            result=record.result,
            version=record.version,
            epoch=record.epoch,
            digest=record.digest,
            reason=record.reason,
        )
        emit = log.info if ok else log.critical
        emit("firmware_boot_verification", **msgspec.structs.asdict(record))
        return record

    async def start(self) -> None:
        """At daemon start: tidy what an interrupted update left, commit a trial slot
        that booted and verified, then raise the counter to the committed slot's epoch."""
        self._dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        for leftover in self._dir.iterdir():
            if leftover.name.endswith((".incoming", ".old")) or leftover.name.startswith(
                ".verify-"
            ):
                await self._pool.call(_remove_tree, leftover)
        record = self.boot_record()
        if record is None or record.result != "verified":
            return
        state = self.boot_state()
        if record.trial and state.pending == record.slot:
            state = fw_slots.commit(state, record.slot)
            self._store_state(state)
            await self._auditor.record(
                EventType.FIRMWARE_UPDATE,
                Outcome.SUCCESS,
                DAEMON,
                f"slot {record.slot}",
                step="commit",
                version=record.version,
                epoch=record.epoch,
            )
        if state.active == record.slot:
            before = await self.counter()
            after = await self._raise_counter(before, record.epoch)
            if after != before:
                await self._auditor.record(
                    EventType.FIRMWARE_UPDATE,
                    Outcome.SUCCESS,
                    DAEMON,
                    "anti-rollback counter",
                    step="counter",
                    previous=before,
                    epoch=after,
                )

    async def replay_measurement(self) -> None:
        """The simulated board's swtpm restarts with the daemon (a TPM reset): extend the
        measurement of this power-on's boot record again, as the boot unit did, before
        the keys bound to it are opened. A device's TPM keeps it from power-on."""
        record = self.boot_record()
        if (
            self.settings.replay_measurement
            and record is not None
            and record.result == "verified"
            and record.digest
            and await self._tpm.pcr_read(self.settings.pcr) == _ZERO_PCR
        ):
            await self._tpm.pcr_extend(self.settings.pcr, bytes.fromhex(record.digest))

    # ---- the rewrite lock (F-3)

    async def lock_state(self) -> tuple[bool, str, str]:
        row = await self._state.run(
            lambda c: c.execute(
                "SELECT locked, by_user, at FROM firmware_lock WHERE id = 1"
            ).fetchone()
        )
        if row is None:
            return False, "", ""
        return bool(row[0]), str(row[1]), str(row[2])

    async def set_lock(self, locked: bool, subject: Subject) -> None:
        who = subject.user or subject.origin
        at = utc_text(self._clock.now())
        async with self._auditor.event(EventType.FIRMWARE_UPDATE, subject, "rewrite lock") as ev:
            ev.details["step"] = "lock" if locked else "unlock"
            was, _, _ = await self.lock_state()
            ev.details.update(
                setting_changes.as_details(
                    setting_changes.changes(was, locked, prefix="firmware.rewrite_locked")
                )
            )
            await self._state.run(
                lambda c: c.execute(
                    "INSERT INTO firmware_lock (id, locked, by_user, at) VALUES (1, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET locked = excluded.locked, "
                    "by_user = excluded.by_user, at = excluded.at",
                    (int(locked), who, at),
                )
            )
            state = self.boot_state()
            if locked and state.pending is not None:
                # A staged update that has not booted yet is discarded: the lock means
                # that no firmware written before it gets to run (or to raise the
                # anti-rollback counter). The slot stays written, out of the boot order.
                self._store_state(fw_slots.before_write(state))
                ev.details["discarded"] = state.pending
                log.warning("firmware_pending_discarded", slot=state.pending)
            ev.succeed()

    async def _refuse_if_locked(self) -> None:
        locked, _by, at = await self.lock_state()
        if locked:
            raise MfpsecError(ErrorCode.FIRMWARE_REWRITE_PROHIBITED, since=at)

    # ---- update (F-1, F-3, F-4)

    async def update(
        self, source: BinaryIO, subject: Subject, progress: Progress | None = None
    ) -> BootRecord:
        """Write a bundle archive to the inactive slot and name it for the next boot.
        → what the next boot will try (as a record of this verification)."""
        if self._busy.locked():
            raise MfpsecError(ErrorCode.FIRMWARE_UPDATE_IN_PROGRESS)
        async with (
            self._busy,
            self._auditor.event(EventType.FIRMWARE_UPDATE, subject, "firmware") as ev,
        ):
            ev.details["step"] = "write"
            await self._refuse_if_locked()
            state = self.boot_state()
            target = fw_slots.update_target(state)
            ev.details["slot"] = target
            if fw_slots.before_write(state) != state:  # the target leaves the boot order
                self._store_state(fw_slots.before_write(state))
            staging = self._dir / f"{target}.incoming"
            await self._pool.call(_remove_tree, staging)
            try:
                img = await self._stage(source, staging, await self.counter(), progress)
                ev.details.update(
                    version=img.manifest.version, epoch=img.manifest.epoch, digest=img.digest.hex()
                )
                await self._refuse_if_locked()  # a lock set meanwhile still wins
                await self._pool.call(self._install, staging, target)
            finally:
                await self._pool.call(_remove_tree, staging)
            ev.details["keys"] = await self._bind_keys(img)
            await self._refuse_if_locked()  # a lock set while the keys were bound
            self._store_state(fw_slots.staged(self.boot_state(), target, self.settings.boot_tries))
            ev.succeed()
            log.info("firmware_staged", slot=target, version=img.manifest.version)
            return BootRecord(
                result="verified",
                at=utc_text(self._clock.now()),
                mode="",
                slot=target,
                trial=True,
                version=img.manifest.version,
                epoch=img.manifest.epoch,
                digest=img.digest.hex(),
                pcr=self.settings.pcr,
            )

    async def _bind_keys(self, img: VerifiedImage) -> str:
        """Bind the key chain to what the boot verification will measure for this
        firmware, before the slot is named for boot: a failure leaves the slot out of
        the boot order, so the device never boots firmware its keys do not open."""
        if self._bind_next_boot is None:
            return "not bound"
        record = self.boot_record()
        if record is None or record.result != "verified" or not record.pcr_value:
            # Not measured at this boot: the keys are bound to nothing a boot of this
            # firmware would reproduce, so there is nothing to carry over.
            return "not bound (this boot was not measured)"
        before = bytes.fromhex(record.pcr_before) if record.pcr_before else _ZERO_PCR
        expected = extended(before, img.digest)
        bound = await self._bind_next_boot(
            self.settings.pcr,
            expected,
            f"update to {img.manifest.version} (manifest {img.digest.hex()[:16]})",
        )
        return f"bound to PCR {self.settings.pcr} = {expected.hex()[:16]}" if bound else "not bound"

    async def _stage(
        self, source: BinaryIO, staging: Path, minimum: int, progress: Progress | None = None
    ) -> VerifiedImage:
        now = self._clock.now()

        def header(raw: bytes, sig: bytes, pem: bytes, pq: Signed | None) -> fw_manifest.Manifest:
            return verify_header(
                raw,
                sig,
                pem,
                roots=list(self.settings.roots),
                model=self.settings.model,
                minimum_epoch=minimum,
                clock=ClockCheck.CHECK,
                now=now,
                crls=self.settings.crls,
                post_quantum_signed=pq,
            )[0]

        def run() -> VerifiedImage:
            fw_archive.extract(source, staging, header, max_bytes=self.settings.max_bundle_bytes)
            return self._verify(staging, minimum, ClockCheck.CHECK)

        # Its own threads: a stalled archive never takes those of other capabilities.
        work = self._pool.run(run)
        if progress is None:
            return await work
        return await watched(
            work, progress, self._clock, self.settings.transfers, "firmware archive"
        )

    def _install(self, staging: Path, target: str) -> None:
        slot = self.slot_path(target)
        old = self._dir / f"{target}.old"
        _remove_tree(old)
        if os.path.lexists(slot):
            os.rename(slot, old)
        os.rename(staging, slot)
        fsync_dir(self._dir)
        _remove_tree(old)

    async def verify_archive(
        self, source: BinaryIO, subject: Subject, progress: Progress | None = None
    ) -> VerifiedImage:
        """Check a bundle archive as an update would, without writing any slot."""
        staging = self._dir / f".verify-{os.urandom(6).hex()}"
        async with self._auditor.event(EventType.FIRMWARE_VERIFY, subject, "bundle") as ev:
            try:
                img = await self._stage(source, staging, await self.counter(), progress)
            finally:
                await self._pool.call(_remove_tree, staging)
            ev.details.update(
                version=img.manifest.version, epoch=img.manifest.epoch, digest=img.digest.hex()
            )
            ev.succeed()
            return img

    async def verify_slot(self, slot: str | None, subject: Subject) -> VerifiedImage:
        """Check an installed slot (by default the one running) against its manifest."""
        record = self.boot_record()
        name = slot or (record.slot if record and record.slot else self.boot_state().active)
        async with self._auditor.event(EventType.FIRMWARE_VERIFY, subject, f"slot {name}") as ev:
            img = await self._pool.call(
                self._verify, self.slot_path(name), await self.counter(), ClockCheck.IGNORE
            )
            ev.details.update(version=img.manifest.version, digest=img.digest.hex())
            ev.succeed()
            return img

    # ---- status

    def _slot_view(self, name: str, state: fw_slots.BootState, floor: int | None) -> SlotView:
        manifest = self.slot_path(name) / "manifest.json"
        label = (
            "committed"
            if name == state.active
            else "trial"
            if name == state.pending
            else "failed"
            if name == state.failed
            else "written"
        )
        if not manifest.exists():
            return SlotView(name, "empty", "", 0, "")
        try:
            raw = manifest.read_bytes()
            m = fw_manifest.parse(raw)
        except (OSError, MfpsecError):
            return SlotView(name, "invalid", "", 0, "")
        # Not verified here: status reads, `fw verify` checks.
        if floor is not None and m.epoch < floor:
            label = "retired"  # below the anti-rollback floor: can no longer boot
        return SlotView(name, label, m.version, m.epoch, fw_manifest.digest(raw).hex())

    async def status(self) -> FirmwareView:
        state = self.boot_state()
        try:
            counter: int | None = await self._tpm.counter_read(self.settings.counter_index)
        except MfpsecError:
            counter = None
        locked, by, at = await self.lock_state()
        return FirmwareView(
            self.settings.model,
            state.active,
            state.pending or "",
            state.tries,
            self.boot_record(),
            counter,
            locked,
            by,
            at,
            [self._slot_view(s, state, counter) for s in fw_slots.SLOTS],
            state.failed or "",
            state.reason,
        )
