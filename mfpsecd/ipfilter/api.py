"""io.mfpsecd.Network: IP filtering and port control (SPEC N-1..N-4).

Every change is checked, applied to the kernel as one transaction and only then stored;
a refused one leaves the rules in force as they were. A front-end acting for a remote
administrator passes their address: a change that would cut that address off is refused
(WouldLockOut) unless repeated with confirm=true.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.descriptors import Descriptor
from mfpsecd.varlink.schema import Interface, Method, NoParams, P

RangeText = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
ServiceName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")]
Address = Annotated[str, msgspec.Meta(max_length=64)]


class ServiceState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A network service of the board profile and whether its ports are open."""

    name: str  # what SetPort takes, e.g. "ipp"
    ports: list[str]  # "tcp/443"
    on: bool  # its ports are open (to the sources the filter admits)


class BanInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A source refused for a while for tripping the flood detector."""

    range: str  # the source address (or range), as Unban takes it
    left_s: int  # until it expires by itself


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The IP filter's policy, what it admits now, and whether the kernel holds it."""

    # The ranges as entered, in order: what `Remove` takes. When any permitted range is
    # given for a family, only those sources of it are admitted.
    permitted: list[str]
    refused: list[str]  # as entered, in order; refused even if a permitted range covers them
    quick: bool  # N-3
    quick_ranges: list[str]  # what the quick filter admits now (from the addresses)
    addresses: list[str]  # the device's current addresses on the board's interfaces
    services: list[ServiceState]  # every network service of the board profile
    wired: list[str]  # N-4: no forwarding between these and the wireless ones
    wireless: list[str]  # the board's wireless interfaces (names)
    in_kernel: bool  # our table is loaded
    applied_at: str  # RFC 3339 UTC: when the kernel last took our rules ("": not since start)
    # What the kernel enforces: the same ranges merged (overlapping and adjacent ones
    # joined, one inside another gone).
    effective_permitted: list[str] = []
    effective_refused: list[str] = []  # the refused ranges, merged likewise
    # The four lists above hold the page asked for (GetRules offset/limit; a change's
    # reply: the first page); these are their whole lengths.
    permitted_total: int = 0
    refused_total: int = 0  # the whole length of refused
    effective_permitted_total: int = 0  # the whole length of effective_permitted
    effective_refused_total: int = 0  # the whole length of effective_refused
    # Sources refused for a while for tripping the flood detector (network.ban_s).
    banned: list[BanInfo] = []


PAGE = 1000


class RangeList(enum.Enum):
    """Which list of ranges an import goes into."""

    PERMITTED = "permitted"
    REFUSED = "refused"


class RulesQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0  # into each list of ranges
    # At most this many of each list of ranges (default 1000; 0: only the totals).
    limit: Annotated[int, msgspec.Meta(ge=0, le=10000)] = PAGE


class ImportParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    descriptor: Descriptor  # readable: one range per line, `#` comments (UTF-8)
    list: RangeList  # the list the file's ranges go into
    replace: bool = False  # the list becomes the file's ranges (else they are added)
    # The remote administrator's IP address, when a front-end (root, the panel) acts for
    # one; "" for a local caller (others may not pass one). A change that would cut it off
    # from every web port is refused (WouldLockOut) unless confirm is true.
    remote_address: Address = ""
    confirm: bool = False  # make the change even though it cuts remote_address off


class Imported(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ranges: int  # ranges in the file
    added: int  # new to the list
    unchanged: int  # in it already
    removed: int  # replace: in the list before, not in the file
    duplicates: int  # repeated in the file
    rules: Rules  # after the import (the first page of each list)


class RangeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    range: RangeText  # CIDR, one address, or start-end
    # The remote administrator's IP address, when a front-end (root, the panel) acts for
    # one; "" for a local caller (others may not pass one). A change that would cut it off
    # from every web port is refused (WouldLockOut) unless confirm is true. Unban only
    # records it.
    remote_address: Address = ""
    confirm: bool = False  # make the change even though it cuts remote_address off (not Unban)


class QuickParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    on: bool  # true: only the device's own /24s and global /64s are admitted (quick_ranges)
    # The remote administrator's IP address, when a front-end (root, the panel) acts for
    # one; "" for a local caller (others may not pass one). A change that would cut it off
    # from every web port is refused (WouldLockOut) unless confirm is true.
    remote_address: Address = ""
    confirm: bool = False  # make the change even though it cuts remote_address off


class PortParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    service: ServiceName  # a service's name (Rules.services)
    on: bool  # true: its ports are opened; false: closed
    # The remote administrator's IP address, when a front-end (root, the panel) acts for
    # one; "" for a local caller (others may not pass one). A change that would cut it off
    # from every web port is refused (WouldLockOut) unless confirm is true.
    remote_address: Address = ""
    confirm: bool = False  # make the change even though it cuts remote_address off


class Ruleset(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    nftables_json: str  # what is (or would be) applied, as `nft -j -f -` takes it


_CHANGE_ERRORS = (
    ErrorCode.NETWORK_RULES_INVALID,
    ErrorCode.NETWORK_APPLY_FAILED,
    ErrorCode.NETWORK_WOULD_LOCK_OUT,
    ErrorCode.NETWORK_UNAVAILABLE,
)


def _change(name: str, doc: str, params: type[P]) -> Method[P, Rules]:
    return Method(
        name=name,
        doc=doc,
        params=params,
        result=Rules,
        requires=Privilege.NETWORK_ADMIN,
        errors=_CHANGE_ERRORS,
    )


GET_RULES = Method(
    name="GetRules",
    doc="The policy, what it admits now, and whether it is loaded;\n"
    "the lists of ranges from offset, at most limit of each.",
    params=RulesQuery,
    result=Rules,
    requires=Privilege.NETWORK_READ,
    errors=(ErrorCode.NETWORK_UNAVAILABLE,),
)


ALLOW = _change("Allow", "Add a permitted range.", RangeParams)


DENY = _change("Deny", "Add a refused range.", RangeParams)


REMOVE = _change("Remove", "Remove a permitted or refused range.", RangeParams)


IMPORT = Method(
    name="Import",
    doc="A file of ranges (a passed descriptor) into the permitted or\n"
    "refused list, added or replacing it: checked as a whole\n"
    "(a bad line imports nothing), applied as one transaction,\n"
    "audited as one change with the counts.",
    params=ImportParams,
    result=Imported,
    requires=Privilege.NETWORK_ADMIN,
    errors=(*_CHANGE_ERRORS, ErrorCode.TRANSFER_TIMEOUT, ErrorCode.INVALID_PARAMETER),
    passes_descriptor=True,
)


UNBAN = _change("Unban", "Lift a ban the flood detector led to before it expires.", RangeParams)


SET_QUICK = _change("SetQuick", "Switch the quick IP filter on or off.", QuickParams)


SET_PORT = _change("SetPort", "Switch a network service's ports on or off.", PortParams)


APPLY = Method(
    name="Apply",
    doc="Load the stored policy into the kernel again.",
    params=NoParams,
    result=Rules,
    requires=Privilege.NETWORK_ADMIN,
    errors=(ErrorCode.NETWORK_APPLY_FAILED, ErrorCode.NETWORK_UNAVAILABLE),
)


PREVIEW = Method(
    name="Preview",
    doc="The nftables JSON of the policy in force (a dry run:\nnothing is applied).",
    params=NoParams,
    result=Ruleset,
    requires=Privilege.NETWORK_READ,
)


NETWORK = Interface(
    module=__name__,
    name="io.mfpsecd.Network",
    doc=(
        "The device's IP filter: permitted and refused source ranges (IPv4 and IPv6),\n"
        "the quick filter (only the device's own /24 and global /64s), the network\n"
        "services' ports, and no forwarding between the wired and wireless interfaces."
    ),
    methods=(
        GET_RULES,
        ALLOW,
        DENY,
        REMOVE,
        IMPORT,
        UNBAN,
        SET_QUICK,
        SET_PORT,
        APPLY,
        PREVIEW,
    ),
)
