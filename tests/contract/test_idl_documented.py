"""Issue 25 item 3: the IDL is the contract a panel written in another language reads,
and the only one: every method, named type and field in it says what it means."""

from __future__ import annotations

import msgspec

from mfpsecd.base.access import Privilege
from mfpsecd.daemon.interfaces import INTERFACES
from mfpsecd.varlink.idl import undocumented
from mfpsecd.varlink.schema import Interface, Method, NoParams


def test_every_method_type_and_field_of_the_published_interfaces_has_a_comment() -> None:
    ours = [i for i in INTERFACES if not i.name.startswith("org.varlink.")]
    assert len(ours) >= 8
    missing = {i.name: undocumented(i) for i in ours}
    assert not any(missing.values()), {k: v for k, v in missing.items() if v}


class _Params(msgspec.Struct, frozen=True):
    size: int  # bytes
    name: str


class _Reply(msgspec.Struct, frozen=True):
    ok: bool


def test_the_check_names_what_is_missing() -> None:
    method = Method(
        name="Do",
        doc="Do it.",
        params=_Params,
        result=_Reply,
        requires=Privilege.STATUS_READ,
    )
    quiet = Method(
        name="Quiet", doc="", params=NoParams, result=_Reply, requires=Privilege.STATUS_READ
    )
    interface = Interface(name="org.example.Doc", doc="A test.", methods=(method, quiet))
    assert undocumented(interface) == ["Do(in).name", "Do(out).ok", "Quiet", "Quiet(out).ok"]
