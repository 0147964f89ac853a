"""CardReader on a PKCS#11 module (python-pkcs11): OpenSC's module for real smart-card
readers on a device, SoftHSM2 on the simulated board and in tests.

The first token present (or the one with the configured label) is the card. Its
certificate is a public object, read without logging in; the private key with the same
CKA_ID signs after C_Login with the PIN. Modules without combined hash-and-sign
mechanisms (SoftHSM 2.6 has no CKM_ECDSA_SHA256) are served the same way everywhere: the
SHA-256 is computed here and the card signs the digest (CKM_ECDSA, DER-encoded here) or,
for RSA, the DigestInfo (CKM_RSA_PKCS).

python-pkcs11 takes the PIN as a str (it encodes it itself): that copy cannot be wiped.
A PIN is worthless without the card, and the card blocks after its own retry limit.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes

# DER of DigestInfo for SHA-256 (RFC 8017 §9.2 note 1), prefixed to the digest for RSA.
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _unusable(reason: str) -> MfpsecError:
    return MfpsecError(ErrorCode.CARD_UNUSABLE, reason=reason)


# One pkcs11.lib per module and process: C_Initialize may be called only once.
_LIBS: dict[str, Any] = {}
_LIBS_LOCK = threading.Lock()


class Pkcs11Card:
    def __init__(self, module: str, token_label: str = "") -> None:
        self._module = module
        self._label = token_label
        # One reader: a login's calls run in worker threads, and the re-initialisation
        # that finds a newly inserted card must not pull the module from under another.
        self._busy = threading.Lock()

    def _lib(self) -> Any:
        with _LIBS_LOCK:
            lib = _LIBS.get(self._module)
            if lib is None:
                try:
                    lib = _LIBS[self._module] = pkcs11.lib(self._module)
                except p11.PKCS11Error as exc:
                    raise _unusable(f"cannot load the PKCS#11 module: {exc}") from None
            return lib

    def _token(self) -> Any:
        lib = self._lib()
        try:
            lib.reinitialize()  # see readers and cards that came or went since last time
            if self._label:
                return lib.get_token(token_label=self._label)
            for slot in lib.get_slots(token_present=True):
                return slot.get_token()
        except (p11.NoSuchToken, p11.TokenNotPresent):
            pass
        except p11.PKCS11Error as exc:
            raise _unusable(f"reader error: {type(exc).__name__}") from None
        raise _unusable("no card in the reader")

    def certificate(self) -> bytes:
        with self._busy, self._token().open() as session:
            for cert in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
                return bytes(cert[Attribute.VALUE])
        raise _unusable("no certificate on the card")

    def sign(self, pin: SecretBytes, data: bytes) -> bytes:
        with self._busy:
            return self._sign(pin, data)

    def _sign(self, pin: SecretBytes, data: bytes) -> bytes:
        token = self._token()
        try:
            session = token.open(user_pin=bytes(pin.view()).decode("ascii"))
        except UnicodeDecodeError:
            raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED) from None
        except (p11.PinIncorrect, p11.PinLenRange):
            raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED) from None
        except p11.PinLocked:
            raise _unusable("the card's PIN is blocked") from None
        except p11.PKCS11Error as exc:
            raise _unusable(f"cannot log in to the card: {type(exc).__name__}") from None
        with session:
            try:
                cert = next(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=cert[Attribute.ID])
                if not key[Attribute.SIGN]:  # python-pkcs11 gives such keys no sign()
                    raise _unusable("the card's key may not sign")
                digest = hashlib.sha256(data).digest()
                if key.key_type == KeyType.EC:
                    raw = key.sign(digest, mechanism=Mechanism.ECDSA)
                    half = len(raw) // 2
                    return encode_dss_signature(
                        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                    )
                if key.key_type == KeyType.RSA:
                    return bytes(
                        key.sign(_SHA256_DIGEST_INFO + digest, mechanism=Mechanism.RSA_PKCS)
                    )
                raise _unusable(f"unsupported key type {key.key_type}")
            except StopIteration:
                raise _unusable("no certificate on the card") from None
            except (p11.NoSuchKey, p11.MultipleObjectsReturned):
                raise _unusable("no private key that matches the certificate") from None
            except p11.PKCS11Error as exc:
                raise _unusable(f"the card could not sign: {type(exc).__name__}") from None
