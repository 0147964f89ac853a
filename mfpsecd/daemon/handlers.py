"""The table from declared method to implementation. The contract tests check that every
declared method has an entry here and that nothing undeclared does."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import msgspec

from mfpsecd import __version__
from mfpsecd.audit.forwarder import Forwarder
from mfpsecd.audit.handlers import AuditHandlers
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.handlers import AuthHandlers
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.user_store import UserStore
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateConnection
from mfpsecd.daemon import interfaces
from mfpsecd.firmware.api import FIRMWARE
from mfpsecd.firmware.handlers import FirmwareHandlers
from mfpsecd.firmware.service import FirmwareService
from mfpsecd.ipfilter.api import NETWORK
from mfpsecd.ipfilter.handlers import NetworkHandlers
from mfpsecd.ipfilter.service import NetfilterService
from mfpsecd.keys.backup_schedule import BackupScheduler
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.handlers import KeysHandlers
from mfpsecd.keys.identity import DeviceIdentity
from mfpsecd.keys.ports import BackupTargetWatcher
from mfpsecd.keys.secrets import SecretStore
from mfpsecd.monitoring.handlers import MonitoringHandlers
from mfpsecd.monitoring.service import MonitoringService
from mfpsecd.remote.handlers import RemoteHandlers
from mfpsecd.remote.service import RemoteService
from mfpsecd.store.handlers import StoreHandlers
from mfpsecd.store.service import JobStore
from mfpsecd.system.api import (
    GET_POSTURE,
    GET_POSTURE_REPORT,
    SYSTEM,
    VERIFY_POSTURE_REPORT,
    WATCH_EVENTS,
)
from mfpsecd.system.handlers import SecurityViews, SystemHandlers
from mfpsecd.system.status import StatusService
from mfpsecd.usb.handlers import UsbHandlers
from mfpsecd.usb.service import UsbService
from mfpsecd.varlink import idl
from mfpsecd.varlink.calls import CallContext, Handler
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.routes import routes
from mfpsecd.varlink.schema import Interface, NoParams
from mfpsecd.varlink.service import GetInterfaceDescriptionParams, Info, InterfaceDescription
from mfpsecd.wipe.handlers import WipeHandlers
from mfpsecd.wipe.service import WipeService

_INTERFACES = {i.name: i for i in interfaces.INTERFACES}


@functools.cache
def _description(name: str) -> str | None:
    """Generated at the first request, not at start-up (it reads the declaring sources
    for the field comments)."""
    interface = _INTERFACES.get(name)
    return None if interface is None else idl.generate(interface)


@dataclass(frozen=True)
class KeyServices:
    chain: KeyChain
    secrets: SecretStore
    identity: DeviceIdentity
    targets: BackupTargetWatcher
    auditor: Auditor
    schedule: BackupScheduler
    forwarders: Callable[[], Sequence[Forwarder]] = tuple


# The status notice while no administrator password is set.
ADMIN_UNSET = "administrator-unset"


@dataclass(frozen=True)
class DataServices:
    """What works on the device's stored data: sanitization and the job store."""

    wipe: WipeService
    store: JobStore
    store_encryption: str  # how objects are encrypted, as GetStoreStatus says it
    descriptors: FdChannel  # descriptors passed for Put and Read, firmware bundles
    firmware: FirmwareService | None = None  # a board without [firmware] has none
    network: NetfilterService | None = None  # a board without interfaces has none
    usb: UsbService | None = None
    remote: RemoteService | None = None
    monitoring: MonitoringService | None = None


def build_handlers(
    status: StatusService,
    key_services: KeyServices | None = None,
    auth: AuthService | None = None,
    data: DataServices | None = None,
    views: SecurityViews | None = None,
) -> dict[str, Handler]:
    """The whole table; without the services (tests of the IPC layer) Keys, Audit, Auth,
    Wipe, Store and the posture are absent and their methods answer MethodNotImplemented."""
    table = _status_handlers(status, views)
    if key_services is not None:
        svc = key_services
        table.update(
            routes(
                KeysHandlers(
                    svc.chain,
                    svc.secrets,
                    svc.identity,
                    svc.targets,
                    auditor=svc.auditor,
                    erase_with_chain=_erase_secrets_and_accounts,
                    schedule=svc.schedule,
                    end_sessions=None if auth is None else auth.sessions.end_all,
                )
            )
        )
        table.update(routes(AuditHandlers(svc.auditor, svc.forwarders)))
        if auth is not None:
            table.update(
                routes(
                    AuthHandlers(
                        auth,
                        key_services.auditor,
                        lambda unset: status.set_notice(ADMIN_UNSET, unset),
                    )
                )
            )
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
                if data.usb is not None:
                    table.update(routes(UsbHandlers(data.usb)))
                if data.remote is not None:
                    table.update(routes(RemoteHandlers(data.remote)))
                if data.monitoring is not None:
                    table.update(routes(MonitoringHandlers(data.monitoring)))
    return table


# The System methods that answer from the daemon's services, not from the status alone.
SECURITY_VIEWS = (GET_POSTURE, GET_POSTURE_REPORT, VERIFY_POSTURE_REPORT, WATCH_EVENTS)


def failed_handlers(status: StatusService, test: str) -> dict[str, Handler]:
    """After a failed power-on self-test: status and introspection answer, and every
    security function refuses and names the test (fail closed, FPT_TST_EXT.1)."""

    def refused(ctx: CallContext, _: object) -> msgspec.Raw:
        raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test=test)

    async def refused_stream(ctx: CallContext, _: object) -> AsyncIterator[msgspec.Raw]:
        raise MfpsecError(ErrorCode.SELF_TEST_FAILED, test=test)
        yield msgspec.Raw(b"")  # never reached: makes this an async generator

    table = _status_handlers(status, None)
    for method in SECURITY_VIEWS:
        table[f"{SYSTEM.name}.{method.name}"] = refused_stream if method.streams else refused
    for interface in interfaces.INTERFACES:
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


def _service_handlers() -> dict[str, Handler]:
    # Plain functions answer from the read callback (see ipc_server); only handlers that
    # wait for something are coroutines or async generators.
    def get_info(ctx: CallContext, _: NoParams) -> Info:
        return Info(
            vendor=interfaces.VENDOR,
            product=interfaces.PRODUCT,
            version=__version__,
            url=interfaces.URL,
            interfaces=[i.name for i in interfaces.INTERFACES],
        )

    def get_interface_description(
        ctx: CallContext, params: GetInterfaceDescriptionParams
    ) -> InterfaceDescription:
        text = _description(params.interface)
        if text is None:
            raise MfpsecError(ErrorCode.INTERFACE_NOT_FOUND, interface=params.interface)
        return InterfaceDescription(description=text)

    return {
        "org.varlink.service.GetInfo": get_info,
        "org.varlink.service.GetInterfaceDescription": get_interface_description,
    }


def _status_handlers(status: StatusService, views: SecurityViews | None) -> dict[str, Handler]:
    """What answers even after a failed self-test: introspection and the status."""
    table = _service_handlers() | routes(SystemHandlers(status, views))
    if views is None:
        for method in SECURITY_VIEWS:
            del table[f"{SYSTEM.name}.{method.name}"]
    return table


def _erase_secrets_and_accounts(conn: StateConnection) -> None:
    SecretStore.erase_all(conn)
    UserStore.erase_all(conn)
