"""io.mfpsecd.System: daemon identity, status and component health."""

from __future__ import annotations

from mfpsecd.api.types import Status
from mfpsecd.base.access import Privilege
from mfpsecd.varlink.schema import Interface, Method, NoParams

SYSTEM = Interface(
    name="io.mfpsecd.System",
    module=__name__,
    doc="The mfpsecd security daemon: its version, board, state and the health of its parts.",
    methods=(
        Method(
            name="GetStatus",
            doc="Version, board, uptime and the health of every component.",
            params=NoParams,
            result=Status,
            requires=Privilege.STATUS_READ,
        ),
        Method(
            name="WatchStatus",
            doc=(
                "Stream the status: the current one first, then a new reply each time the\n"
                "daemon state or a component's health changes. Call with more=true."
            ),
            params=NoParams,
            result=Status,
            requires=Privilege.STATUS_READ,
            streams=True,
        ),
    ),
)
