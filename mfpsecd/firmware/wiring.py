"""Wiring of the firmware service, and the two firmware commands that run without the
daemon: `mfpsecd fw-verify --boot` (the boot unit) and `mfpsecd fw-sign` (the vendor)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import click
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from mfpsecd.alerts.wiring import make_notifier
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.log_format import Record
from mfpsecd.audit.service import Auditor
from mfpsecd.base import optional
from mfpsecd.base.clock import Clock, SystemClock
from mfpsecd.base.config.loader import Board
from mfpsecd.base.config.schema import BoardKind, Config, SecurityMode
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.base.state import StateStore
from mfpsecd.base.state_lock import lock_state_dir
from mfpsecd.base.transfer import TransferLimits
from mfpsecd.firmware import archive as fw_archive
from mfpsecd.firmware.backends.native_hasher import NativeTreeHasher
from mfpsecd.firmware.bundle import TREE, PostQuantumSigner, SigningKey, sign_bundle
from mfpsecd.firmware.service import BindNextBoot, BootRecord, FirmwareService, FirmwareSettings
from mfpsecd.keys.ports import Tpm
from mfpsecd.keys.wiring import make_tpm

log = structlog.get_logger("mfpsecd.firmware")


def _roots(board: Board) -> tuple[x509.Certificate, ...]:
    out: list[x509.Certificate] = []
    for i, path in enumerate(board.firmware_roots):
        try:
            out += x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise _config(f"firmware.roots[{i}]", f"{path}: {exc}") from None
    return tuple(out)


def _config(key: str, reason: str) -> MfpsecError:
    return MfpsecError(ErrorCode.CONFIG_INVALID, f"{key}: {reason}", key=key, reason=reason)


def _crls(
    board: Board, roots: tuple[x509.Certificate, ...]
) -> tuple[x509.CertificateRevocationList, ...]:
    """The revocation lists; one issued by a configured root must carry its signature
    (one issued by an intermediate CA is checked when a bundle brings that CA)."""
    out: list[x509.CertificateRevocationList] = []
    for i, path in enumerate(board.firmware_crls):
        key = f"firmware.crls[{i}]"
        try:
            data = path.read_bytes()
            crl = (
                x509.load_pem_x509_crl(data)
                if data.lstrip().startswith(b"-----")
                else x509.load_der_x509_crl(data)
            )
        except (OSError, ValueError) as exc:
            raise _config(key, f"{path}: {exc}") from None
        issuers = [r for r in roots if r.subject == crl.issuer]
        if issuers and not any(
            crl.is_signature_valid(r.public_key())  # type: ignore[arg-type]
            for r in issuers
        ):
            raise _config(
                key, f"{path}: not signed by the root it names ({crl.issuer.rfc4514_string()})"
            )
        out.append(crl)
    return tuple(out)


def make_firmware(
    cfg: Config,
    board: Board,
    *,
    tpm: Tpm,
    clock: Clock,
    auditor: Auditor,
    state: StateStore,
    bind_next_boot: BindNextBoot | None = None,
) -> FirmwareService | None:
    fw = board.profile.firmware
    if fw is None:
        return None
    roots = _roots(board)
    settings = FirmwareSettings(
        model=fw.model,
        roots=roots,
        crls=_crls(board, roots),
        slots_dir=board.paths.firmware_slots,
        run_dir=board.paths.run_dir,
        counter_index=board.profile.tpm.nv_counter_index,
        pcr=fw.pcr,
        boot_tries=cfg.firmware.boot_tries,
        max_bundle_bytes=fw.max_bundle_mib << 20,
        replay_measurement=board.profile.board.kind is BoardKind.SIMULATED,
        transfers=TransferLimits.of(cfg.transfers),
    )
    return FirmwareService(
        settings,
        tpm=tpm,
        hasher=NativeTreeHasher(),
        clock=clock,
        auditor=auditor,
        state=state,
        bind_next_boot=bind_next_boot,
    )


async def boot_verification(cfg: Config, board: Board) -> BootRecord:
    """What the boot unit runs: the daemon is not up yet, so this process takes the
    state directory's lock, starts the board's TPM and opens the audit log itself."""
    if board.profile.firmware is None:
        raise MfpsecError(
            ErrorCode.FIRMWARE_UNAVAILABLE, reason="the board profile has no [firmware] section"
        )
    clock = SystemClock()
    lock = lock_state_dir(board.paths.state_dir)
    state = SqliteState(board.paths.state_db)
    await state.open()
    auditor = Auditor(
        AuditFile(board.paths.state_dir / "audit", max_bytes=cfg.audit.max_bytes),
        clock,
        HealthRegistry(clock),
        state,
        full_policy=cfg.audit.full_policy,
        retention_days=cfg.audit.retention_days,
        writer_pid=os.getpid(),
    )
    # The network is not up yet and the daemon's notifier not running: what a rule fires
    # (a failed verification) waits in the outbox for the daemon, or for fw-alert.
    try:
        notifier = make_notifier(
            cfg, clock, HealthRegistry(clock), board.profile.board.name, state, secrets=None
        )
    except MfpsecError as exc:  # the verification runs all the same; the daemon says why
        log.error("notify_config_invalid", error=exc.message)
        notifier = None
    written: list[Record] = []
    auditor.add_listener(written.extend)
    swtpm, tpm = await make_tpm(board)
    try:
        await auditor.start()
        try:
            await tpm.open()
            service = make_firmware(cfg, board, tpm=tpm, clock=clock, auditor=auditor, state=state)
            assert service is not None
            record = await service.boot(cfg.security.mode.value)
            if notifier is not None:
                await notifier.queue(written)
            return record
        finally:
            await auditor.stop()
            await tpm.close()
    finally:
        if swtpm is not None:
            await swtpm.stop()
        await state.close()
        os.close(lock)


def exit_status(record: BootRecord, mode: SecurityMode) -> int:
    """The boot unit's exit status: a failure stops the boot only in enhanced mode."""
    if record.result == "verified" or mode is SecurityMode.NORMAL:
        return 0
    code = next(
        (c for c in ErrorCode if c.wire_name == record.error), ErrorCode.FIRMWARE_UNAVAILABLE
    )
    return code.exit_status


def describe(record: BootRecord) -> str:
    if record.result == "verified":
        line = (
            f"firmware verified: slot {record.slot}{' (trial)' if record.trial else ''}, "
            f"version {record.version}, epoch {record.epoch}, manifest {record.digest[:16]}"
            f", PCR {record.pcr} "
            + (f"= {record.pcr_value[:16]}…" if record.pcr_value else "not measured (no TPM)")
        )
        return line + (f"\n  after: {record.reason}" if record.reason else "")
    return f"FIRMWARE VERIFICATION FAILED ({record.mode} mode): {record.reason}"


# ---- the vendor's signing tool


def load_signing_key(text: str) -> SigningKey:
    """A PEM file, or a pkcs11: URI naming a key in a token (an HSM)."""
    if text.startswith("pkcs11:"):
        optional.require("card_login", key="--key pkcs11:")  # python-pkcs11 is that part's
        from mfpsecd.firmware.backends.pkcs11_key import Pkcs11SigningKey  # noqa: PLC0415

        token_key = Pkcs11SigningKey(text)
        token_key.check()
        return token_key.sign
    path = Path(text)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise click.UsageError(f"--key {path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise click.UsageError("--key: an ECDSA P-384 or Ed25519 private key")
    return key


def load_post_quantum(key: Path | None, certificate: Path | None) -> PostQuantumSigner | None:
    """The ML-DSA-87 half of a hybrid signature (--pq-key and --pq-certificate)."""
    if key is None and certificate is None:
        return None
    if key is None or certificate is None:
        raise click.UsageError("--pq-key and --pq-certificate go together")
    try:
        loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
        pem = certificate.read_bytes()
    except (OSError, ValueError, TypeError) as exc:
        raise click.UsageError(f"--pq-key {key}: {exc}") from None
    if not isinstance(loaded, mldsa.MLDSA87PrivateKey):
        raise click.UsageError("--pq-key: an ML-DSA-87 private key")
    return PostQuantumSigner(loaded, pem)


def sign(
    *,
    key: str,
    certificate: Path,
    pq_key: Path | None = None,
    pq_certificate: Path | None = None,
    product: str,
    version: str,
    epoch: int,
    models: list[str],
    out: Path,
    tree: Path | None,
    archive: Path | None,
) -> bytes:
    # Every key is loaded before anything is written: a wrong option leaves OUT as it was.
    signing_key = load_signing_key(key)
    post_quantum = load_post_quantum(pq_key, pq_certificate)
    if tree is not None:
        if (out / TREE).exists():
            raise click.UsageError(f"{out / TREE} exists: sign it in place without --tree")
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(
            tree, out / TREE, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    digest = sign_bundle(
        out,
        key=signing_key,
        certificate_pem=certificate.read_bytes(),
        hasher=NativeTreeHasher(),
        product=product,
        version=version,
        epoch=epoch,
        models=models,
        created=created,
        post_quantum=post_quantum,
    )
    if archive is not None:
        with archive.open("wb") as f:
            fw_archive.write_archive(out, f)
    return digest


async def start_firmware(firmware: FirmwareService, cfg: Config, health: HealthRegistry) -> None:
    """Commit a trial slot that booted and verified; in enhanced mode (F-2) refuse to run
    on firmware the boot unit did not verify at this power-on."""
    record = firmware.boot_record()
    if record is None or record.result != "verified":
        why = (
            "the boot verification did not run (mfpsecd-fwverify.service)"
            if record is None
            else f"the boot verification failed: {record.reason}"
        )
        if cfg.security.mode is SecurityMode.ENHANCED:
            # The cause, not the error's generic meaning (slots or counter unreadable).
            raise MfpsecError(
                ErrorCode.FIRMWARE_UNAVAILABLE,
                f"enhanced security mode: {why}; the daemon does not run on "
                f"firmware the boot verification did not verify",
                reason=why,
            )
        health.set("firmware", HealthState.FAILED, why)
        await firmware.start()
        return
    try:
        await firmware.start()
    except MfpsecError as exc:
        health.set("firmware", HealthState.FAILED, f"{exc.message}")
        return
    measured = f"measured into PCR {record.pcr}" if record.pcr_value else "not measured (no TPM)"
    health.set(
        "firmware",
        HealthState.DEGRADED if record.reason else HealthState.OK,
        f"slot {record.slot}, version {record.version}, epoch {record.epoch}, "
        f"verified at boot ({record.mode} mode), {measured}"
        + (f"; {record.reason}" if record.reason else ""),
    )
