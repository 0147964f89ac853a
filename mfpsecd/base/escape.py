"""Untrusted text made safe to show a person: what every output a person reads goes
through (the CLI, mails, SNMP notifications and the MIB's texts)."""

from __future__ import annotations

import unicodedata

# Controls, format characters (bidirectional overrides) and line/paragraph separators:
# what can forge a line or drive a terminal. Spaces such as U+3000 (the ideographic space
# in Japanese names) and NBSP are text.
_DRIVING = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _code(ch: str) -> str:
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def shown(text: str) -> str:
    """An untrusted string as a person may read it on a terminal: control and format
    characters (newline, CR, ESC and its sequences, bidirectional overrides) and the
    backslash become visible escapes, so a name can neither forge a line nor drive the
    terminal, and what is shown reads back unambiguously. --json output is for programs,
    and JSON escapes the C0 controls."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_code(ch))
    return "".join(out)


def without_controls(text: str) -> str:
    """Untrusted text for a message a person reads elsewhere (an alert mail, an SNMP
    value a manager shows): only what could forge a line or drive a terminal is
    escaped; a backslash stays one (CORP\\alice), and every space is kept."""
    if text.isprintable():
        return text
    return "".join(_code(ch) if unicodedata.category(ch) in _DRIVING else ch for ch in text)
