"""The table from declared method to implementation. The contract tests check that every
declared method has an entry here and that nothing undeclared does."""

from __future__ import annotations

from collections.abc import AsyncIterator

from mfpsecd import __version__
from mfpsecd.api import idl, registry
from mfpsecd.api.schema import NoParams
from mfpsecd.api.service import GetInterfaceDescriptionParams, Info, InterfaceDescription
from mfpsecd.api.types import DaemonState, Status
from mfpsecd.daemon.ipc_server import CallContext, Handler, Last
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.services.status import StatusService

_DESCRIPTIONS = {i.name: idl.generate(i) for i in registry.INTERFACES}


def build_handlers(status: StatusService) -> dict[str, Handler]:
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
        text = _DESCRIPTIONS.get(params.interface)
        if text is None:
            raise MfpsecError(ErrorCode.INTERFACE_NOT_FOUND, interface=params.interface)
        return InterfaceDescription(description=text)

    def get_status(ctx: CallContext, _: NoParams) -> Status:
        return status.get_status()

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
