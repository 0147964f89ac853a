"""A real SMTP server (aiosmtpd) on loopback that requires STARTTLS, with a certificate
from a throwaway PKI, collecting what it receives."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.pki import make_pki
from tests.support.rsyslog import free_port


@dataclass
class MailSink:
    port: int = 0
    ca: Path = Path()
    messages: list[str] = field(default_factory=list)

    @property
    def subjects(self) -> list[str]:
        return [
            line for m in self.messages for line in m.splitlines() if line.startswith("Subject:")
        ]

    async def handle_DATA(self, server: object, session: Any, envelope: Any) -> str:
        assert session.ssl is not None, "mail must arrive over STARTTLS"
        self.messages.append(envelope.content.decode(errors="replace"))
        return "250 OK"


@contextmanager
def starttls_sink(tmp: Path, port: int = 0) -> Iterator[MailSink]:
    """port: one chosen beforehand (a client configured while the server was down)."""
    pki = make_pki(tmp / "pki")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.cert, pki.key)
    sink = MailSink(port or free_port(), pki.ca)
    smtp = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        tls_context=tls,
        require_starttls=True,
        server_hostname="localhost",
    )
    smtp.start()
    try:
        yield sink
    finally:
        smtp.stop()
