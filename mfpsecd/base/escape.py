"""Untrusted text made safe to show a person: what every output a person reads goes
through (the CLI, mails, SNMP notifications and the MIB's texts)."""

from __future__ import annotations


def shown(text: str) -> str:
    """An untrusted string as a person may read it on a terminal: control and format
    characters (newline, CR, ESC and its sequences, bidirectional overrides) and the
    backslash become visible escapes, so a name can neither forge a line nor drive the
    terminal. --json output is for programs, and JSON escapes the C0 controls."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return "".join(out)
