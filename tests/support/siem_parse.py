"""Parsers for what the forwarder sends: RFC 5424 with octet counting, CEF and LEEF.
Written from the format rules, independently of mfpsecd.audit.model.siem, to check it.

LEEF follows IBM's LEEF 2.0 rules as a QRadar-style parser applies them: the header's
fields are split at unescaped pipes (\\| and \\\\ are its only escapes); the delimiter
field is one character or its code as xHH / 0xHH; attributes are split at every delimiter,
each at its first = into key and value, and values are taken as they are (LEEF defines no
escaping inside them)."""

from __future__ import annotations

import re

# CEF's escapes (header: \\ and |; extension values: \\, =, and line breaks).
_UNESCAPE = {"\\\\": "\\", "\\|": "|", "\\=": "=", "\\n": "\n", "\\r": "\r"}


def unescape(text: str) -> str:
    return re.sub(r"\\[\\|=nr]", lambda m: _UNESCAPE[m.group(0)], text)


def split_unescaped(text: str, sep: str, limit: int = -1) -> list[str]:
    parts, cur, i, n = [], [], 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == sep and (limit < 0 or n < limit):
            parts.append("".join(cur))
            cur, n = [], n + 1
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def deframe(stream: bytes) -> list[bytes]:
    """Octet-counted frames → messages."""
    out, pos = [], 0
    while pos < len(stream):
        space = stream.index(b" ", pos)
        length = int(stream[pos:space])
        out.append(stream[space + 1 : space + 1 + length])
        pos = space + 1 + length
    return out


def syslog(message: bytes) -> dict[str, str]:
    text = message.decode()
    m = re.match(r"<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[.*?[^\\]\]) (.*)\Z", text, re.S)
    assert m, text
    pri, ts, host, app, procid, msgid, sd, msg = m.groups()
    return {
        "pri": pri,
        "time": ts,
        "host": host,
        "app": app,
        "procid": procid,
        "msgid": msgid,
        "sd": sd,
        "msg": msg,
    }


def cef(line: str) -> tuple[list[str], dict[str, str]]:
    assert line.startswith("CEF:0|"), line
    parts = split_unescaped(line[len("CEF:0|") :], "|", 6)
    header = [unescape(p) for p in parts[:6]]
    return header, _pairs(parts[6], " ")


def leef(line: str) -> tuple[list[str], dict[str, str]]:
    assert line.startswith("LEEF:2.0|"), line
    parts = split_unescaped(line[len("LEEF:2.0|") :], "|", 5)
    header = [re.sub(r"\\([\\|])", r"\1", p) for p in parts[:5]]
    delimiter = _leef_delimiter(header[4])
    attrs = {}
    for pair in parts[5].split(delimiter):
        key, sep, value = pair.partition("=")
        assert sep and key and key not in attrs, (pair, line)
        attrs[key] = value
    return header, attrs


def _leef_delimiter(declared: str) -> str:
    m = re.fullmatch(r"(?:0x|x)([0-9A-Fa-f]{2,4})", declared)
    if m:
        return chr(int(m.group(1), 16))
    assert len(declared) == 1, declared
    return declared


def _pairs(ext: str, sep: str) -> dict[str, str]:
    """CEF extension: an unescaped = always follows a key, the last word before it."""
    out: dict[str, str] = {}
    chunks = split_unescaped(ext, "=")
    key = chunks[0].strip()
    for chunk in chunks[1:-1]:
        value, _, nxt = chunk.rpartition(sep)
        out[key] = unescape(value)
        key = nxt
    out[key] = unescape(chunks[-1])
    return out
