"""The TLS client context of every channel the daemon opens (the SIEM, the mail relay):
TLS 1.2 or 1.3, the peer's certificate checked against the configured CA and its name,
and in TLS 1.2 only suites with ephemeral key exchange and AEAD ciphers (FCS_CKM.2,
FTP_ITC.1). The platform's defaults would also offer RSA key transport, which has no
forward secrecy: a collector's stolen key would open every session it ever recorded."""

from __future__ import annotations

import ssl

# TLS 1.2 suites: ECDHE or DHE key exchange, AES-GCM or ChaCha20-Poly1305. TLS 1.3's own
# suites all have both and are left as OpenSSL sets them.
TLS12_SUITES = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!aDSS:!PSK:!SRP"


def client_context(cafile: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_SUITES)
    return ctx
