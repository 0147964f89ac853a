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
    name: str
    ports: list[str]  # "tcp/443"
    on: bool


class BanInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    range: str
    left_s: int  # until it expires by itself


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The ranges as entered, in order: what `Remove` takes. When any permitted range is
    # given for a family, only those sources of it are admitted.
    permitted: list[str]
    refused: list[str]
    quick: bool  # N-3
    quick_ranges: list[str]  # what the quick filter admits now (from the addresses)
    addresses: list[str]  # the device's current addresses on the board's interfaces
    services: list[ServiceState]
    wired: list[str]  # N-4: no forwarding between these and the wireless ones
    wireless: list[str]
    in_kernel: bool  # our table is loaded
    applied_at: str
    # What the kernel enforces: the same ranges merged (overlapping and adjacent ones
    # joined, one inside another gone).
    effective_permitted: list[str] = []
    effective_refused: list[str] = []
    # The four lists above hold the page asked for (GetRules offset/limit; a change's
    # reply: the first page); these are their whole lengths.
    permitted_total: int = 0
    refused_total: int = 0
    effective_permitted_total: int = 0
    effective_refused_total: int = 0
    # Sources refused for a while for tripping the flood detector (network.ban_s).
    banned: list[BanInfo] = []


PAGE = 1000


class RangeList(enum.Enum):
    PERMITTED = "permitted"
    REFUSED = "refused"


class RulesQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0  # into each list of ranges
    limit: Annotated[int, msgspec.Meta(ge=0, le=10000)] = PAGE


class ImportParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    descriptor: Descriptor  # readable: one range per line, `#` comments (UTF-8)
    list: RangeList
    replace: bool = False  # the list becomes the file's ranges (else they are added)
    remote_address: Address = ""
    confirm: bool = False


class Imported(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ranges: int  # ranges in the file
    added: int  # new to the list
    unchanged: int  # in it already
    removed: int  # replace: in the list before, not in the file
    duplicates: int  # repeated in the file
    rules: Rules


class RangeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    range: RangeText  # CIDR, one address, or start-end
    remote_address: Address = ""
    confirm: bool = False


class QuickParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    on: bool
    remote_address: Address = ""
    confirm: bool = False


class PortParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    service: ServiceName
    on: bool
    remote_address: Address = ""
    confirm: bool = False


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
