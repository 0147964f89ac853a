"""The monitoring settings as one document (io.mfpsecd.Monitoring): the configuration's
[[audit.forward]], [notify] and [snmp] sections, converted both ways and checked with
the configuration's own rules, so a document an administrator sends is held to exactly
what the file is. Pure."""

from __future__ import annotations

import re

import msgspec

from mfpsecd.base.config.schema import (
    AuditForwardSection,
    Config,
    NotifySection,
    SnmpSection,
)
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.monitoring import api


class Sections(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    forward: list[AuditForwardSection] = []
    notify: NotifySection = NotifySection()
    snmp: SnmpSection = SnmpSection()


_PATH = re.compile(r" - at `\$\.?(.*)`\Z")


def of_config(cfg: Config) -> Sections:
    return Sections(forward=list(cfg.audit.forward), notify=cfg.notify, snmp=cfg.snmp)


def applied(cfg: Config, sections: Sections) -> Config:
    """The configuration with these sections in place of the file's."""
    return msgspec.structs.replace(
        cfg,
        audit=msgspec.structs.replace(cfg.audit, forward=list(sections.forward)),
        notify=sections.notify,
        snmp=sections.snmp,
    )


def as_document(sections: Sections) -> api.Document:
    return msgspec.convert(msgspec.to_builtins(sections), api.Document)


def as_sections(document: api.Document) -> Sections:
    """Held to the configuration's rules; CONFIG_INVALID names the first key refused."""
    try:
        sections = msgspec.convert(msgspec.to_builtins(document), Sections)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _PATH.search(text)
        key = m.group(1) if m else ""
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID, f"{key}: {_PATH.sub('', text)}", key=key, reason=text
        ) from None
    _unique("forward", [d.name for d in sections.forward])
    _unique("notify.rules", [r.name for r in sections.notify.rules or []])
    return sections


def _unique(key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"{key}: {name!r} is named twice",
                key=key,
                reason=f"duplicate name {name}",
            )
        seen.add(name)


def secret_names(sections: Sections) -> list[str]:
    """Every secret-store entry the document names, in order, once."""
    mail, snmp = sections.notify.mail, sections.notify.snmp
    names = [mail.password_secret] if mail else []
    if snmp is not None:
        names += [snmp.auth_secret, snmp.priv_secret, snmp.community_secret]
    return list(dict.fromkeys(n for n in names if n))


def encode(sections: Sections) -> str:
    return msgspec.json.encode(sections).decode()


def decode(stored: str) -> Sections:
    return msgspec.json.decode(stored, type=Sections)
