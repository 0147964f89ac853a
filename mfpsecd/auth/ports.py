"""What authentication needs from outside: the PKI card reader (A-8)."""

from __future__ import annotations

from typing import Protocol

from mfpsecd.base.secret import SecretBytes


class CardReader(Protocol):
    """The card in the reader, through PKCS#11. Blocking: call from a worker thread."""

    def certificate(self) -> bytes:
        """The card's certificate (DER); no PIN needed. CardUnusable without one."""
        ...

    def sign(self, pin: SecretBytes, data: bytes) -> bytes:
        """data signed with the certificate's private key after the PIN (SHA-256; ECDSA as
        DER, RSA as PKCS#1 v1.5). AuthenticationFailed for a wrong PIN, CardUnusable when
        the card cannot sign."""
        ...
