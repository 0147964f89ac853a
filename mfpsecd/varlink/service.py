"""org.varlink.service: the introspection interface every Varlink service provides."""

from __future__ import annotations

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import Interface, Method, NoParams


class Info(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    vendor: str
    product: str
    version: str
    url: str
    interfaces: list[str]


class GetInterfaceDescriptionParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    interface: str


class InterfaceDescription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    description: str


SERVICE = Interface(
    name="org.varlink.service",
    doc=(
        "The Varlink Service Interface is provided by every varlink service. It\n"
        "describes the service and the interfaces it implements."
    ),
    methods=(
        Method(
            name="GetInfo",
            doc=(
                "Get a list of all the interfaces a service provides and information\n"
                "about the implementation."
            ),
            params=NoParams,
            result=Info,
            requires=Privilege.INTROSPECT,
        ),
        Method(
            name="GetInterfaceDescription",
            doc="Get the description of an interface that is implemented by this service.",
            params=GetInterfaceDescriptionParams,
            result=InterfaceDescription,
            requires=Privilege.INTROSPECT,
            errors=(ErrorCode.INTERFACE_NOT_FOUND,),
        ),
    ),
)
