"""Start-up, serving and shutdown of the daemon, in the order B-2 asks for.

READY=1 is sent only after the state store is open and migrated, the crypto self-tests
passed, the key chain has been opened (master key unwrapped, or the chain found locked
and reported so) and the IPC socket is accepting. Any start-up failure is fatal and reported with
its error code (the process exits with the code's status).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from mfpsecd import __version__
from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.audit.session_failures import SessionFailures
from mfpsecd.auth.model.throttle import Throttle, ThrottleLimits
from mfpsecd.auth.sessions import SessionTable
from mfpsecd.auth.wiring import make_auth
from mfpsecd.base import optional
from mfpsecd.base.addresses import Range, parse_range
from mfpsecd.base.admission import PeerCredentials
from mfpsecd.base.clock import Clock, SystemClock, rfc3339
from mfpsecd.base.config.loader import Board, admission_rules, gid_of
from mfpsecd.base.config.schema import Config
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.base.state_lock import lock_state_dir
from mfpsecd.base.supervisor import Supervisor
from mfpsecd.daemon import interfaces
from mfpsecd.daemon.device_identity import siem_device
from mfpsecd.daemon.handlers import (
    DataServices,
    KeyServices,
    build_handlers,
    failed_handlers,
)
from mfpsecd.daemon.posture import posture_book
from mfpsecd.daemon.posture_report import posture_reporter
from mfpsecd.daemon.reporting import Reporting, stored_secrets
from mfpsecd.daemon.sdnotify import SdNotifier
from mfpsecd.daemon.snmp_facts import snmp_facts, status_facts
from mfpsecd.firmware.wiring import make_firmware, start_firmware
from mfpsecd.ipfilter.wiring import (
    make_netfilter,
    start_netfilter,
    stop_netfilter,
    supervise_netfilter,
)
from mfpsecd.keys.backends.native_crypto import NativeCryptoSelfTest, NativeKeyCrypto
from mfpsecd.keys.backends.swtpm import SwtpmProcess
from mfpsecd.keys.backends.usb_targets import UdevBackupTargets
from mfpsecd.keys.chain import ChainState, KeyChain
from mfpsecd.keys.identity import DeviceIdentity
from mfpsecd.keys.ports import Tpm
from mfpsecd.keys.secrets import SecretStore
from mfpsecd.keys.wiring import (
    audit_key_chain,
    identity_fingerprints,
    identity_signer,
    make_backup_scheduler,
    make_tpm,
)
from mfpsecd.monitoring import settings_store
from mfpsecd.monitoring.model.document import applied
from mfpsecd.monitoring.service import MonitoringService
from mfpsecd.remote.wiring import make_remote, panel_hooks
from mfpsecd.scan.wiring import start_scan, supervise_scan
from mfpsecd.snmp.wiring import make_counters, make_subagent
from mfpsecd.store.wiring import encryption_text, make_store
from mfpsecd.system.api import DaemonState
from mfpsecd.system.boots import BootLog
from mfpsecd.system.events import EventFeed
from mfpsecd.system.handlers import SecurityViews, fast_replies
from mfpsecd.system.self_tests import PowerOnSelfTests
from mfpsecd.system.status import BoardInfo, StatusService
from mfpsecd.system.timewatch import watch_time
from mfpsecd.usb.wiring import make_usb
from mfpsecd.varlink.calls import Handler
from mfpsecd.varlink.descriptors import fd_socket_path
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.server import ServerLimits, VarlinkServer
from mfpsecd.varlink.sockets import activated_sockets
from mfpsecd.wipe.wiring import make_wipe

log = structlog.get_logger("mfpsecd")
# How often the posture is read when nobody asks: a protection lost is recorded soon.
POSTURE_PERIOD_S = 60.0


@dataclass
class Daemon:
    config: Config
    board: Board
    clock: Clock
    notifier: SdNotifier

    async def run(self) -> None:
        cfg, board, clock = self.config, self.board, self.clock
        health = HealthRegistry(clock)
        status = StatusService(
            clock, health, BoardInfo(board.profile.board.name, board.profile.board.kind.value)
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        self._status("opening state store")
        lock = lock_state_dir(board.paths.state_dir)
        state = SqliteState(board.paths.state_db)
        await state.open()
        health.set("state-db", HealthState.OK, f"schema v{state.schema_version}")
        boots = BootLog(state)
        boot = await boots.record_start(status.started_at, __version__)
        status.set_boot(boot)
        # The monitoring settings an administrator set replace the file's sections.
        stored = await settings_store.load(state)
        if stored is not None:
            cfg = applied(cfg, stored.sections)

        self._status("opening the audit log")
        auditor = Auditor(
            AuditFile(board.paths.state_dir / "audit", max_bytes=cfg.audit.max_bytes),
            clock,
            health,
            state,
            full_policy=cfg.audit.full_policy,
            retention_days=cfg.audit.retention_days,
            writer_pid=os.getpid(),
        )
        counters = make_counters(cfg)
        auditor.add_listener(counters.offer)
        await auditor.start()

        self._status("opening the key chain")
        swtpm, tpm = await make_tpm(board)
        crypto = NativeKeyCrypto()
        fw_profile = board.profile.firmware
        chain = KeyChain(
            state,
            tpm,
            crypto,
            clock,
            health,
            min_passphrase=cfg.keys.min_backup_passphrase,
            firmware_pcr=fw_profile.pcr if fw_profile is not None else None,
            platform_pcrs=board.profile.tpm.bind_pcrs,
        )
        secrets = SecretStore(state, chain, clock)
        firmware = make_firmware(
            cfg,
            board,
            tpm=tpm,
            clock=clock,
            auditor=auditor,
            state=state,
            bind_next_boot=chain.bind_next_boot,
        )
        opened = await _open_tpm(tpm, chain)
        self._status("running power-on self-tests")
        tested = await PowerOnSelfTests(NativeCryptoSelfTest(), auditor, health, clock).run(
            tpm if opened else None
        )
        if not tested.ok:
            # Fail closed before any key is unwrapped: status only, until a restart.
            await self._refuse_until_stopped(status, tested.failed, stop, cfg, health)
            await auditor.stop(checkpoint=False)
            await _release(
                tpm, swtpm, lambda: boots.record_stop(boot.boot_id, rfc3339(clock)), state, lock
            )
            return
        if opened:
            if firmware is not None:
                await firmware.replay_measurement()  # before the keys bound to it open
            await chain.start()
        await audit_key_chain(auditor, chain)
        auditor.set_signer(identity_signer(chain))
        auditor.set_trust(identity_fingerprints(chain))
        if chain.state is ChainState.READY:  # before any new checkpoint could hide it
            await auditor.check_checkpoint()
        failures = SessionFailures(auditor, clock)
        reporting = Reporting(
            auditor=auditor,
            state=state,
            clock=clock,
            health=health,
            failures=failures,
            secrets=secrets.get,
            device=siem_device(board, chain, firmware),
            board_name=board.profile.board.name,
            counters=counters,
        )
        commit_reporting = await reporting.prepare(cfg)  # a part that cannot be built: fatal
        targets = UdevBackupTargets(
            clock,
            [p.sysfs_path for p in board.profile.usb_ports],
            board.paths.proc_root / "self" / "mountinfo",
        )
        schedule = make_backup_scheduler(
            chain, secrets, state, clock, targets=targets, health=health, auditor=auditor
        )
        await schedule.start()
        keys = KeyServices(
            chain,
            secrets,
            DeviceIdentity(chain, clock, board.profile.board.name),
            targets,
            auditor,
            schedule,
            lambda: reporting.forwarders,
        )

        throttle = _throttle(cfg)
        a = make_auth(cfg, state, secrets, crypto, auditor, clock=clock, throttle=throttle)
        auth, sessions, hasher = a.service, a.sessions, a.hasher
        await auth.start()

        self._status("resuming sanitizations")
        wipe = make_wipe(
            cfg,
            board,
            state,
            auditor,
            clock=clock,
            health=health,
            signer=identity_signer(chain),
            identities=chain.identities,
            tool=f"mfpsecd {__version__}",
        )
        await wipe.start()

        self._status("opening the job store")
        scan = await start_scan(cfg, clock=clock, health=health, auditor=auditor)
        store = make_store(
            cfg,
            board,
            state,
            chain,
            auditor,
            clock=clock,
            crypto=crypto,
            job_data=wipe.job_data,
            scan=scan,
        )
        await store.start()
        encryption = encryption_text(cfg)
        health.set(
            "store",
            HealthState.OK,
            f"{board.paths.job_store} on {board.profile.store.medium.value}; {encryption}",
        )

        if firmware is not None:
            self._status("checking the firmware")
            await start_firmware(firmware, cfg, health)

        network = make_netfilter(
            cfg, board, state=state, auditor=auditor, clock=clock, health=health
        )
        if network is not None:
            self._status("applying the IP filter")
            await start_netfilter(network, health, auditor)

        remote = make_remote(
            cfg,
            state,
            auditor=auditor,
            clock=clock,
            panel=panel_hooks(sessions, admission_rules(cfg).panel_uids),
        )
        await remote.start()
        sessions.granted_for_now = remote.granted_for_now

        self._status("judging the USB devices")
        usb = make_usb(cfg, board, state=state, auditor=auditor, clock=clock, health=health)
        await usb.start()

        posture = posture_book(
            state,
            clock,
            cfg,
            auditor=auditor,
            auth=auth,
            store=store,
            encryption=encryption,
            wipe=wipe,
            chain=chain,
            schedule=schedule,
            forwarders=lambda: reporting.forwarders,
            firmware=firmware,
            network=network,
            usb=usb,
            scan=scan,
        )

        self._status("starting IPC")
        descriptors = FdChannel(admission_rules(cfg), clock)
        activated = activated_sockets()  # once: it takes LISTEN_FDS out of the environment
        server, where = await _listen(
            cfg,
            board,
            clock,
            build_handlers(
                status,
                keys,
                auth,
                DataServices(
                    wipe,
                    store,
                    encryption,
                    descriptors,
                    firmware,
                    network,
                    usb,
                    remote,
                    MonitoringService(
                        self.config,
                        state,
                        auditor=auditor,
                        clock=clock,
                        reporting=reporting,
                        stored_secrets=stored_secrets(secrets),
                        stored=stored,
                    ),
                ),
                SecurityViews(
                    posture,
                    EventFeed(auditor, reporting.alert_of, clock),
                    auditor,
                    clock,
                    posture_reporter(
                        posture,
                        status,
                        clock,
                        cfg=cfg,
                        board=board,
                        chain=chain,
                        firmware=firmware,
                    ),
                ),
            ),
            activated.get("varlink"),
            sessions=sessions,
            fast=fast_replies(status),
            release=descriptors.release,
            refused=_refusals(failures),
        )
        socket_path, group = _socket(cfg, board)
        fd_where = descriptors.listen(fd_socket_path(socket_path), group, activated.get("fd"))
        health.set("ipc", HealthState.OK, f"listening on {where}; descriptors on {fd_where}")

        supervisor = Supervisor(clock, health)
        supervisor.add("ipc-idle-reaper", server.reap_idle)
        supervisor.add("usb-backup-targets", targets.run)
        supervisor.add("key-backup-schedule", schedule.run)
        supervisor.add("posture-watch", lambda: posture.watch(POSTURE_PERIOD_S))
        supervisor.add("time-watch", lambda: watch_time(clock, auditor))
        supervisor.add("auth-flood-summary", auth.report_suppressed)
        supervisor.add("store-policies", store.run)
        if network is not None:
            supervise_netfilter(
                supervisor, network, cfg, throttle=throttle, auditor=auditor, clock=clock
            )
        supervisor.add("usb-policy", usb.run)
        supervisor.add("remote-sessions", remote.run)
        supervise_scan(supervisor, scan)
        supervisor.add("session-failures", failures.run)
        reporting.facts = snmp_facts(
            status=status,
            posture=posture,
            chain=chain,
            firmware=firmware,
            auditor=auditor,
            forwarders=lambda: reporting.forwarders,
            counters=counters,
        )
        reporting.attach(supervisor)
        await commit_reporting()
        supervisor.add(
            "audit-checkpoints", lambda: auditor.run_checkpoints(cfg.audit.checkpoint_interval_s)
        )
        supervisor.add(
            "state-checkpoint",
            lambda: _checkpoint_loop(clock, state, cfg.state.checkpoint_interval_s),
        )
        _add_watchdog(supervisor, clock, self.notifier)

        status.set_lifecycle(DaemonState.READY)
        self.notifier.notify(
            "READY=1", f"STATUS=ready: board {board.profile.board.name}, IPC on {where}"
        )
        log.info(
            "daemon_ready",
            version=__version__,
            board=board.profile.board.name,
            socket=where,
            boot=boot.boot_count,
            previous_shutdown=boot.previous_shutdown,
            pid=os.getpid(),
        )

        await stop.wait()

        self.notifier.notify("STOPPING=1", "STATUS=stopping")
        status.set_lifecycle(DaemonState.STOPPING)
        log.info("daemon_stopping")
        descriptors.close()
        await server.close()
        await supervisor.stop()
        await wipe.stop()  # running sanitizations pause at a checkpoint and resume next start
        if network is not None:
            await stop_netfilter(network)
        hasher.close()
        await auditor.stop()  # its last checkpoint is signed with the TPM: before the keys go
        await chain.close()
        await _release(
            tpm, swtpm, lambda: boots.record_stop(boot.boot_id, rfc3339(clock)), state, lock
        )
        log.info("daemon_stopped")

    async def _refuse_until_stopped(
        self,
        status: StatusService,
        failed: str,
        stop: asyncio.Event,
        cfg: Config,
        health: HealthRegistry,
    ) -> None:
        """After a failed power-on self-test: status and introspection answer, every
        security function refuses and names the test, until the daemon is stopped. A
        fleet tool still reads the daemon's state (selfTestFailed) over SNMP."""
        status.set_lifecycle(DaemonState.FAILED)
        fleet = make_subagent(
            cfg,
            status_facts(status),
            clock=self.clock,
            health=health,
            device=self.board.profile.board.name,
            version=__version__,
        )
        subagent = None if fleet is None else asyncio.create_task(fleet.subagent.run())
        server, _ = await _listen(
            self.config,
            self.board,
            self.clock,
            failed_handlers(status, failed),
            activated_sockets().get("varlink"),
        )
        self.notifier.notify(
            "READY=1", f"STATUS=power-on self-test failed: {failed}; security functions refused"
        )
        await stop.wait()
        self.notifier.notify("STOPPING=1", "STATUS=stopping")
        if subagent is not None:
            subagent.cancel()
            await asyncio.gather(subagent, return_exceptions=True)
        await server.close()

    def _status(self, text: str) -> None:
        self.notifier.notify(f"STATUS={text}")
        log.info("startup", step=text)


async def _release(
    tpm: Tpm,
    swtpm: SwtpmProcess | None,
    record_stop: Callable[[], Awaitable[None]],
    state: SqliteState,
    lock: int,
) -> None:
    """What the daemon holds from its first steps, let go in reverse order."""
    await tpm.close()
    if swtpm is not None:
        await swtpm.stop()
    await record_stop()
    await state.close()
    os.close(lock)


def _refusals(failures: SessionFailures) -> Callable[[PeerCredentials | None, str], None]:
    """A local peer the IPC socket refused, as a session failure of the "ipc" channel."""

    def refused(peer: PeerCredentials | None, reason: str) -> None:
        if peer is None:
            failures.report("ipc", "unknown peer", reason, subject=Subject(origin="local"))
        else:
            failures.report(
                "ipc",
                f"uid {peer.uid}",
                reason,
                subject=Subject(origin="local", uid=peer.uid, pid=peer.pid),
            )

    return refused


def _socket(cfg: Config, board: Board) -> tuple[Path, int | None]:
    ipc = cfg.ipc
    group = None if ipc.socket_group is None else gid_of(ipc.socket_group, "ipc.socket_group")
    return (board.paths.default_socket if ipc.socket_path is None else Path(ipc.socket_path), group)


async def _listen(
    cfg: Config,
    board: Board,
    clock: Clock,
    handlers: dict[str, Handler],
    activated: socket.socket | None,
    *,
    sessions: SessionTable | None = None,
    fast: dict[bytes, tuple[str, Callable[[], bytes]]] | None = None,
    release: Callable[[str, int], None] | None = None,
    refused: Callable[[PeerCredentials | None, str], None] | None = None,
) -> tuple[VarlinkServer, str]:
    ipc = cfg.ipc
    server = VarlinkServer(
        handlers,
        admission_rules(cfg),
        ServerLimits(
            ipc.max_message_bytes,
            ipc.max_connections,
            ipc.idle_timeout_s,
            ipc.queue_depth,
            reserved_per_class=ipc.reserved_per_class,
            first_call_timeout_s=ipc.first_call_timeout_s,
        ),
        clock,
        interfaces=interfaces.INTERFACES,
        access=sessions,
        fast=fast,
        release_descriptor=release,
        on_refused=refused,
    )
    socket_path, group = _socket(cfg, board)
    where = await server.listen(socket_path, group, activated)
    return server, where


def _throttle(cfg: Config) -> Throttle:
    """Flood detection (A-5, A-6): what auth throttles by and the IP filter bans by."""
    f = cfg.auth.flood
    return Throttle(
        ThrottleLimits(
            f.failures,
            f.failure_window_s,
            f.requests,
            f.request_window_s,
            f.block_factor,
            f.total_requests,
            f.base_delay_s,
            f.max_delay_s,
            f.max_sources,
            f.spray_children,
            f.max_detections,
        ),
        exempt=_exempt_sources(f.exempt),
    )


def _exempt_sources(texts: list[str]) -> tuple[Range, ...]:
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(parse_range(text))
        except ValueError as exc:
            key = f"auth.flood.exempt[{i}]"
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID, f"{key}: {exc}", key=key, reason=str(exc)
            ) from None
    return tuple(out)


async def _checkpoint_loop(clock: Clock, state: SqliteState, interval: float) -> None:
    while True:
        await clock.sleep(interval)
        await state.checkpoint()


async def _watchdog_loop(clock: Clock, notifier: SdNotifier, interval: float) -> None:
    while True:
        notifier.notify("WATCHDOG=1")
        await clock.sleep(interval)


def _add_watchdog(supervisor: Supervisor, clock: Clock, notifier: SdNotifier) -> None:
    """WATCHDOG=1 at the interval systemd asked for, when it armed a watchdog."""
    interval = notifier.watchdog_interval_s
    if interval is not None:
        supervisor.add("watchdog", lambda: _watchdog_loop(clock, notifier, interval))


async def _open_tpm(tpm: Tpm, chain: KeyChain) -> bool:
    """Open the TPM; when it cannot be, the key chain fails closed (no secrets, status
    says why) and the daemon goes on with what does not need it."""
    try:
        await tpm.open()
    except MfpsecError as exc:
        chain.fail(exc)
        return False
    return True


def make_daemon(config: Config, board: Board) -> Daemon:
    optional.check_config(config)  # a part the configuration uses and this build lacks
    return Daemon(config, board, SystemClock(), SdNotifier.from_environment())
