"""The Tpm port on tpm2-pytss (ESAPI): a kernel resource manager on a controller
(`device:/dev/tpmrm0`) or a swtpm process on the simulated board.

Every ESAPI call runs on one worker thread (an ESYS context is not thread-safe and TPM
commands take milliseconds to seconds) and every TSS2 return code goes through one
translation table. Commands whose response carries a secret (RSA_Decrypt of the master
key, Duplicate for the backup) run in an HMAC session salted with the storage root key
and with response parameter encryption, so the secret never crosses the bus (SPI/LPC on a
controller) in the clear. Secret outputs are copied straight into SecretBytes and the
library's own buffer is zeroed; afterwards a harmless command overwrites the response
buffer the TSS keeps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import struct
from collections.abc import Callable
from typing import TypeVar

# The TSS logs every TPM error response to stderr; we translate and log them ourselves.
os.environ.setdefault("TSS2_LOG", "all+none")

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tpm2_pytss import ESAPI, TSS2_Exception
from tpm2_pytss._libtpm2_pytss import ffi
from tpm2_pytss.constants import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_CAP,
    TPM2_CC,
    TPM2_NT,
    TPM2_PT,
    TPM2_RC,
    TPM2_RH,
    TPM2_SE,
    TPM2_ST,
    TPMA_NV,
    TPMA_OBJECT,
    TPMA_SESSION,
)
from tpm2_pytss.types import (
    TPM2B_DATA,
    TPM2B_DIGEST,
    TPM2B_ENCRYPTED_SECRET,
    TPM2B_NV_PUBLIC,
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
    TPML_DIGEST,
    TPML_DIGEST_VALUES,
    TPML_PCR_SELECTION,
    TPMS_NV_PUBLIC,
    TPMS_SCHEME_HASH,
    TPMT_HA,
    TPMT_RSA_DECRYPT,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
    TPMT_SYM_DEF_OBJECT,
    TPMT_TK_HASHCHECK,
    TPMU_ASYM_SCHEME,
    TPMU_HA,
    TPMU_SIG_SCHEME,
    TPMU_SYM_KEY_BITS,
    TPMU_SYM_MODE,
)

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes, wipe
from mfpsecd.keys.model.pcr_policy import PcrBinding
from mfpsecd.keys.ports import TpmInfo, TpmKey

log = structlog.get_logger("mfpsecd.tpm")
T = TypeVar("T")

# The storage root key: ECC P-256 from the TCG provisioning template (restricted decrypt,
# AES-128-CFB for children). Created from the owner seed at every start, so the same TPM
# always yields the same key and nothing is persisted in the TPM's limited NV.
SRK_TEMPLATE = "ecc256:aes128cfb"
SRK_ATTRS = TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS | TPMA_OBJECT.NODA

# Wrapping key: plain RSA-2048 decryption key. Not fixedTPM/fixedParent so that the one
# backup (K-3) can take it out through TPM2_Duplicate, and so that it can be re-imported
# under another policy (a firmware update binds it to the next boot's PCR value). Neither
# role has an auth value that opens it: both need its policy (core.pcr_policy).
WRAP_TEMPLATE = "rsa2048:oaep-sha256:null"
WRAP_ATTRS = (
    TPMA_OBJECT.DECRYPT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.ADMINWITHPOLICY
    | TPMA_OBJECT.NODA
)
SIGN_TEMPLATE = "ecc256:ecdsa-sha256"
SIGN_ATTRS = (
    TPMA_OBJECT.SIGN_ENCRYPT
    | TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.USERWITHAUTH
    | TPMA_OBJECT.NODA
)

_OAEP = TPMT_RSA_DECRYPT(
    scheme=TPM2_ALG.OAEP, details=TPMU_ASYM_SCHEME(oaep=TPMS_SCHEME_HASH(hashAlg=TPM2_ALG.SHA256))
)
_ECDSA = TPMT_SIG_SCHEME(
    scheme=TPM2_ALG.ECDSA, details=TPMU_SIG_SCHEME(any=TPMS_SCHEME_HASH(hashAlg=TPM2_ALG.SHA256))
)
_NULL_SYM = TPMT_SYM_DEF_OBJECT(algorithm=TPM2_ALG.NULL)
_SESSION_SYM = TPMT_SYM_DEF(
    algorithm=TPM2_ALG.AES, keyBits=TPMU_SYM_KEY_BITS(aes=128), mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB)
)
# Continue, and encrypt the first response parameter (TPMA_SESSION.ENCRYPT is "the TPM
# encrypts"; DECRYPT would cover the first command parameter, none of ours is secret).
_SESSION_ATTRS = TPMA_SESSION.CONTINUESESSION | TPMA_SESSION.ENCRYPT


def duplication_policy() -> bytes:
    """PolicyCommandCode(TPM2_CC_Duplicate): the policy of a wrapping key from before the
    PCR binding (kept to re-bind such a key)."""
    return hashlib.sha256(
        bytes(32)
        + int(TPM2_CC.PolicyCommandCode).to_bytes(4, "big")
        + int(TPM2_CC.Duplicate).to_bytes(4, "big")
    ).digest()


# ---------------------------------------------------------------- error translation

# TPM format-one codes that mean "this blob is not this TPM's or was modified".
_INTEGRITY = {
    int(TPM2_RC.INTEGRITY),
    int(TPM2_RC.KEY),
    int(TPM2_RC.SIZE),
    int(TPM2_RC.VALUE),
    int(TPM2_RC.BINDING),
}
_TCTI_LAYER = 0x000A0000
_RC_OBJECT_MEMORY = 0x902  # TPM_RC_OBJECT_MEMORY (a warning: no free object slot)
_PT_FIRMWARE_VERSION_1 = 0x10B
_TRANSIENT_FIRST = 0x80000000
_HMAC_SESSION_FIRST = 0x02000000  # loaded sessions (TPM_HT_HMAC_SESSION)
_POLICY_SESSION_FIRST = 0x03000000  # TPM_PT_FIXED + 11 (not named in tpm2-pytss)


def translate(exc: TSS2_Exception, command: str, obj: str | None = None) -> MfpsecError:
    """One table from TSS2 return codes to ErrorCodes."""
    rc = int(exc.rc)
    base = rc & 0xBF if rc & 0x80 else rc & 0xFFF  # format-one: strip the parameter number
    if obj is not None and (rc & 0x80) and base in {c & 0xBF for c in _INTEGRITY}:
        return MfpsecError(ErrorCode.KEY_INTEGRITY, object=obj)
    code = f"0x{rc:08x}"
    if rc & 0xFFFF0000 == _TCTI_LAYER:
        code += " (TPM unreachable)"
    return MfpsecError(ErrorCode.TPM_FAILED, command=command, code=code)


def _is_tpm_refusal(exc: TSS2_Exception) -> bool:
    """An error response from the TPM itself (not the transport, not a retry warning)."""
    rc = int(exc.rc)
    return rc & 0xFFFF0000 == 0 and not (rc & 0x900 == 0x900 and not rc & 0x80)


def _wipe_tpm2b(obj: object) -> None:
    """Zero a tpm2-pytss TPM2B's buffer in its C memory (before the library frees it)."""
    cdata = obj._cdata  # type: ignore[attr-defined]
    field = type(obj)._get_bytefield()  # type: ignore[attr-defined]
    wipe(memoryview(ffi.buffer(getattr(cdata, field))))


def _secret_from_tpm2b(obj: object) -> SecretBytes:
    cdata = obj._cdata  # type: ignore[attr-defined]
    field = type(obj)._get_bytefield()  # type: ignore[attr-defined]
    view = memoryview(ffi.buffer(getattr(cdata, field), cdata.size))
    secret = SecretBytes(bytearray(view))
    _wipe_tpm2b(obj)
    return secret


def _tpm2b_from_secret(cls: type[T], secret: SecretBytes) -> T:
    obj = cls()
    cdata = obj._cdata  # type: ignore[attr-defined]
    field = cls._get_bytefield()  # type: ignore[attr-defined]
    target = getattr(cdata, field)
    if len(secret) > ffi.sizeof(target):
        raise MfpsecError(ErrorCode.KEY_INTEGRITY, object="exported key")
    ffi.memmove(target, secret.view(), len(secret))
    cdata.size = len(secret)
    return obj


def _unmarshal(cls: type[T], data: bytes, what: str) -> T:
    """A whole marshalled TPM structure, nothing more; KEY_INTEGRITY otherwise."""
    try:
        obj, used = cls.unmarshal(data)  # type: ignore[attr-defined]
    except Exception:
        raise MfpsecError(ErrorCode.KEY_INTEGRITY, object=what) from None
    if used != len(data):
        raise MfpsecError(ErrorCode.KEY_INTEGRITY, object=what)
    return obj  # type: ignore[no-any-return]


class Tpm2Backend:
    def __init__(self, tcti: str, backend: str) -> None:
        self._tcti = tcti
        self._backend = backend
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tpm")
        self._esys: ESAPI | None = None
        self._srk: ESYS_TR | None = None
        self._session: ESYS_TR | None = None
        self._loaded: dict[bytes, ESYS_TR] = {}
        self._info = TpmInfo(backend, True, "unknown", "unknown", tcti)

    @property
    def info(self) -> TpmInfo:
        return self._info

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _ctx(self) -> ESAPI:
        if self._esys is None:
            raise MfpsecError(ErrorCode.TPM_FAILED, command="(not open)", code="closed")
        return self._esys

    # ---- lifecycle

    def _open(self) -> None:
        try:
            self._esys = ESAPI(self._tcti)
        except TSS2_Exception as exc:
            raise translate(exc, "connect") from None
        esys = self._esys
        try:
            self._flush_leftovers(esys)
            self._srk, *_ = esys.create_primary(
                None, TPM2B_PUBLIC.parse(SRK_TEMPLATE, objectAttributes=SRK_ATTRS)
            )
            # Salted with the SRK: the session key is secret even to a bus observer.
            self._session = esys.start_auth_session(
                self._srk, ESYS_TR.NONE, TPM2_SE.HMAC, _SESSION_SYM, TPM2_ALG.SHA256
            )
            esys.trsess_set_attributes(self._session, _SESSION_ATTRS)
            self._info = TpmInfo(self._backend, True, *self._identify(esys), self._tcti)
        except TSS2_Exception as exc:
            raise translate(exc, "CreatePrimary") from None

    @staticmethod
    def _flush_leftovers(esys: ESAPI) -> None:
        """Flush transient objects and sessions a previous (killed) run left in the TPM.

        Behind the kernel's resource manager we see only our own connection's (none, at
        start); on a TPM without one (swtpm) a killed daemon's objects and sessions would
        otherwise fill the TPM's few slots for good."""
        _, data = esys.get_capability(TPM2_CAP.HANDLES, _TRANSIENT_FIRST, 64)
        for handle in data.data.handles:
            try:
                esys.flush_context(esys.tr_from_tpmpublic(int(handle)))
            except TSS2_Exception as exc:
                log.warning(
                    "tpm_leftover_flush_failed",
                    handle=f"0x{int(handle):08x}",
                    code=f"0x{int(exc.rc):08x}",
                )
        tcti = esys.get_tcti()
        for first in (_HMAC_SESSION_FIRST, _POLICY_SESSION_FIRST):
            _, data = esys.get_capability(TPM2_CAP.HANDLES, first, 64)
            for handle in data.data.handles:
                # ESAPI cannot name a session it did not start: send TPM2_FlushContext raw.
                tcti.transmit(
                    struct.pack(">HIII", 0x8001, 14, int(TPM2_CC.FlushContext), int(handle))
                )
                rc = struct.unpack(">HII", tcti.receive(4096)[:10])[2]
                if rc != 0:
                    log.warning(
                        "tpm_leftover_flush_failed",
                        handle=f"0x{int(handle):08x}",
                        code=f"0x{rc:08x}",
                    )

    @staticmethod
    def _identify(esys: ESAPI) -> tuple[str, str]:
        _, data = esys.get_capability(TPM2_CAP.TPM_PROPERTIES, TPM2_PT.FIXED, 64)
        props = {int(p.property): int(p.value) for p in data.data.tpmProperties}
        maker = props.get(int(TPM2_PT.MANUFACTURER), 0).to_bytes(4, "big")
        hi, lo = props.get(_PT_FIRMWARE_VERSION_1, 0), props.get(_PT_FIRMWARE_VERSION_1 + 1, 0)
        return (
            maker.rstrip(b"\0").decode("ascii", "replace") or "unknown",
            f"{hi >> 16}.{hi & 0xFFFF}.{lo >> 16}.{lo & 0xFFFF}",
        )

    async def open(self) -> None:
        await self._call(self._open)

    def _close(self) -> None:
        if self._esys is not None:
            for handle in self._loaded.values():
                self._flush(handle)
            for handle in (self._session, self._srk):
                if handle is not None:
                    self._flush(handle)
            self._loaded.clear()
            self._srk = self._session = None
            self._esys.close()
            self._esys = None

    def _flush(self, handle: ESYS_TR) -> None:
        try:
            self._ctx().flush_context(handle)
        except TSS2_Exception as exc:
            log.warning("tpm_flush_failed", code=f"0x{int(exc.rc):08x}")

    async def close(self) -> None:
        await self._call(self._close)
        self._executor.shutdown(wait=True)

    # ---- keys

    def _encrypting(self) -> ESYS_TR:
        if self._session is None:
            raise MfpsecError(ErrorCode.TPM_FAILED, command="(not open)", code="closed")
        return self._session

    def _srk_handle(self) -> ESYS_TR:
        if self._srk is None:
            raise MfpsecError(ErrorCode.TPM_FAILED, command="(not open)", code="closed")
        return self._srk

    def _create(
        self,
        template: str,
        attrs: TPMA_OBJECT,
        policy: bytes | None,
        binding: PcrBinding | None = None,
    ) -> TpmKey:
        public = TPM2B_PUBLIC.parse(template, objectAttributes=attrs, authPolicy=policy)
        try:
            priv, pub, *_ = self._ctx().create(self._srk_handle(), None, public)
        except TSS2_Exception as exc:
            raise translate(exc, "Create") from None
        return TpmKey(public=pub.marshal(), private=priv.marshal(), binding=binding)

    async def create_wrapping_key(self, binding: PcrBinding) -> TpmKey:
        return await self._call(
            lambda: self._create(WRAP_TEMPLATE, WRAP_ATTRS, binding.policy, binding)
        )

    async def create_signing_key(self) -> TpmKey:
        return await self._call(lambda: self._create(SIGN_TEMPLATE, SIGN_ATTRS, None))

    def _load(self, key: TpmKey, what: str) -> ESYS_TR:
        handle = self._loaded.get(key.private)
        if handle is not None:
            return handle
        pub = _unmarshal(TPM2B_PUBLIC, key.public, what)
        priv = _unmarshal(TPM2B_PRIVATE, key.private, what)
        try:
            try:
                handle = self._ctx().load(self._srk_handle(), priv, pub)
            except TSS2_Exception as exc:
                if int(exc.rc) & 0xFFF != _RC_OBJECT_MEMORY or not self._loaded:
                    raise
                # Out of transient slots (a TPM without a resource manager has 3): flush
                # the keys we keep loaded and try again.
                for cached in self._loaded.values():
                    self._flush(cached)
                self._loaded.clear()
                handle = self._ctx().load(self._srk_handle(), priv, pub)
        except TSS2_Exception as exc:
            raise translate(exc, "Load", what) from None
        self._loaded[key.private] = handle
        return handle

    async def public_key_der(self, key: TpmKey) -> bytes:
        def der() -> bytes:
            pub = _unmarshal(TPM2B_PUBLIC, key.public, "public key")
            return serialization.load_pem_public_key(pub.to_pem()).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )

        return await self._call(der)

    def _policy_session(self, key: TpmKey, command: TPM2_CC) -> ESYS_TR:
        """A policy session that satisfies the key's policy for `command`, if the PCRs
        hold the values the key is bound to (KEYS_UNAVAILABLE otherwise)."""
        esys = self._ctx()
        session = esys.start_auth_session(
            ESYS_TR.NONE,
            ESYS_TR.NONE,
            TPM2_SE.POLICY,
            TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
            TPM2_ALG.SHA256,
        )
        binding = key.binding
        try:
            if binding is not None and binding.pcrs:
                selection, _ = TPML_PCR_SELECTION.unmarshal(binding.selection)
                # An empty digest: the TPM takes the PCRs' current values, and the
                # PolicyOR below accepts only the branch made from the bound ones.
                esys.policy_pcr(session, TPM2B_DIGEST(), selection)
            esys.policy_command_code(session, command)
            if binding is not None:
                try:
                    esys.policy_or(session, TPML_DIGEST(list(binding.branches)))
                except TSS2_Exception as exc:
                    if int(exc.rc) & 0xBF == int(TPM2_RC.VALUE):
                        raise MfpsecError(
                            ErrorCode.KEYS_UNAVAILABLE,
                            reason=f"the PCRs do not hold the values the wrapping key is "
                            f"bound to ({binding.describe()})",
                        ) from None
                    raise
        except TSS2_Exception as exc:
            self._flush(session)
            raise translate(exc, "PolicySession", "wrapping key") from None
        except MfpsecError:
            self._flush(session)
            raise
        return session

    def _scrub(self, handle: ESYS_TR) -> None:
        """Overwrite the TSS's response buffer (which held a secret) with a public area."""
        try:
            self._ctx().read_public(handle)
        except TSS2_Exception as exc:
            log.warning("tpm_scrub_failed", code=f"0x{int(exc.rc):08x}")

    async def decrypt(self, key: TpmKey, ciphertext: bytes, label: bytes) -> SecretBytes:
        if not label.endswith(b"\0"):
            # The TPM treats an OAEP label as a C string and hashes it with its NUL.
            raise ValueError("TPM OAEP labels end with a NUL byte")

        def run() -> SecretBytes:
            handle = self._load(key, "wrapping key")
            policy = None if key.binding is None else self._policy_session(key, TPM2_CC.RSA_Decrypt)
            try:
                if policy is None:
                    # A key from before the binding: the encrypting session authorises
                    # it (empty auth value).
                    out = self._ctx().rsa_decrypt(
                        handle, ciphertext, _OAEP, label, session1=self._encrypting()
                    )
                else:
                    out = self._ctx().rsa_decrypt(
                        handle,
                        ciphertext,
                        _OAEP,
                        label,
                        session1=policy,
                        session2=self._encrypting(),
                    )
            except TSS2_Exception as exc:
                if int(exc.rc) & 0xBF == int(TPM2_RC.POLICY_FAIL):
                    # The session met the stored binding's branches, not the key's own
                    # policy: the binding on record was changed.
                    raise MfpsecError(
                        ErrorCode.KEY_INTEGRITY, object="wrapping key binding"
                    ) from None
                if _is_tpm_refusal(exc):
                    # The key loaded, so the ciphertext is not one it made (libtpms answers
                    # TPM_RC_FAILURE or TPM_RC_VALUE for a bad OAEP block).
                    raise MfpsecError(
                        ErrorCode.KEY_INTEGRITY, object="wrapped master key"
                    ) from None
                raise translate(exc, "RSA_Decrypt") from None
            finally:
                if policy is not None:
                    self._flush(policy)
            try:
                return _secret_from_tpm2b(out)
            finally:
                self._scrub(handle)

        return await self._call(run)

    async def sign_digest(self, key: TpmKey, digest: bytes) -> bytes:
        def run() -> bytes:
            handle = self._load(key, "identity key")
            try:
                sig = self._ctx().sign(
                    handle,
                    digest,
                    _ECDSA,
                    TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL),
                )
            except TSS2_Exception as exc:
                raise translate(exc, "Sign", "identity key") from None
            r = int.from_bytes(bytes(sig.signature.ecdsa.signatureR), "big")
            s = int.from_bytes(bytes(sig.signature.ecdsa.signatureS), "big")
            return encode_dss_signature(r, s)

        return await self._call(run)

    async def export_key(self, key: TpmKey) -> SecretBytes:
        def run() -> SecretBytes:
            esys = self._ctx()
            handle = self._load(key, "wrapping key")
            session = self._policy_session(key, TPM2_CC.Duplicate)
            try:
                # No new parent, no inner wrapper: the clear sensitive area, which the caller
                # encrypts under the backup passphrase at once.
                _, dup, _ = esys.duplicate(
                    handle,
                    ESYS_TR.RH_NULL,
                    TPM2B_DATA(),
                    _NULL_SYM,
                    session1=session,
                    session2=self._encrypting(),
                )
            except TSS2_Exception as exc:
                raise translate(exc, "Duplicate", "wrapping key") from None
            finally:
                self._flush(session)
            try:
                return _secret_from_tpm2b(dup)
            finally:
                self._scrub(handle)

        return await self._call(run)

    async def import_key(
        self, public: bytes, sensitive: SecretBytes, binding: PcrBinding
    ) -> TpmKey:
        def run() -> TpmKey:
            pub = _unmarshal(TPM2B_PUBLIC, public, "backed-up public area")
            # The same key under the binding's policy: with no wrapper around the
            # duplicate, the TPM checks only that the public and private halves match.
            area = pub.publicArea
            area.objectAttributes = WRAP_ATTRS
            area.authPolicy = TPM2B_DIGEST(binding.policy)
            dup = _tpm2b_from_secret(TPM2B_PRIVATE, sensitive)
            try:
                priv = self._ctx().import_(
                    self._srk_handle(), TPM2B_DATA(), pub, dup, TPM2B_ENCRYPTED_SECRET(), _NULL_SYM
                )
            except TSS2_Exception as exc:
                raise translate(exc, "Import", "backed-up key") from None
            finally:
                _wipe_tpm2b(dup)
            key = TpmKey(public=pub.marshal(), private=priv.marshal(), binding=binding)
            self._scrub(self._load(key, "wrapping key"))
            return key

        return await self._call(run)

    async def self_test(self) -> str:
        def run() -> str:
            esys = self._ctx()
            try:
                esys.self_test(True)  # fullTest: every algorithm, not only the untested ones
                _, result = esys.get_test_result()
            except TSS2_Exception as exc:
                # TPM_RC_FAILURE: the chip is in failure mode and answers nothing else.
                if _is_tpm_refusal(exc):
                    raise MfpsecError(
                        ErrorCode.SELF_TEST_FAILED, test=f"TPM self-test (0x{int(exc.rc):08x})"
                    ) from None
                raise translate(exc, "SelfTest") from None
            if int(result) != int(TPM2_RC.SUCCESS):
                raise MfpsecError(
                    ErrorCode.SELF_TEST_FAILED, test=f"TPM self-test (result 0x{int(result):08x})"
                )
            return "TPM2_SelfTest (full) and TPM2_GetTestResult passed"

        return await self._call(run)

    async def forget(self, key: TpmKey) -> None:
        def run() -> None:
            handle = self._loaded.pop(key.private, None)
            if handle is not None:
                self._flush(handle)

        await self._call(run)

    # ---- NV counters (anti-rollback)

    def _nv(self, index: int) -> ESYS_TR | None:
        try:
            return self._ctx().tr_from_tpmpublic(index)
        except TSS2_Exception as exc:
            if int(exc.rc) & 0xBF == int(TPM2_RC.HANDLE) & 0xBF:
                return None
            raise translate(exc, "NV_ReadPublic") from None

    async def counter_read(self, index: int) -> int | None:
        def run() -> int | None:
            nv = self._nv(index)
            if nv is None:
                return None
            try:
                return int.from_bytes(bytes(self._ctx().nv_read(nv, 8, 0, ESYS_TR.OWNER)), "big")
            except TSS2_Exception as exc:
                # A counter that was never incremented cannot be read yet.
                if int(exc.rc) & 0xFFF == int(TPM2_RC.NV_UNINITIALIZED):
                    return 0
                raise translate(exc, "NV_Read") from None
            finally:
                self._ctx().tr_close(nv)

        return await self._call(run)

    async def counter_define(self, index: int) -> None:
        def run() -> None:
            attrs = (
                TPMA_NV.OWNERWRITE
                | TPMA_NV.OWNERREAD
                | TPMA_NV.NO_DA
                | (TPM2_NT.COUNTER << TPMA_NV.TPM2_NT_SHIFT)
            )
            public = TPM2B_NV_PUBLIC(
                nvPublic=TPMS_NV_PUBLIC(
                    nvIndex=index, nameAlg=TPM2_ALG.SHA256, attributes=attrs, dataSize=8
                )
            )
            try:
                nv = self._ctx().nv_define_space(None, public)
                self._ctx().nv_increment(nv, ESYS_TR.OWNER)  # counters start initialised
                self._ctx().tr_close(nv)
            except TSS2_Exception as exc:
                raise translate(exc, "NV_DefineSpace") from None

        await self._call(run)

    async def counter_increment(self, index: int) -> int:
        def run() -> int:
            nv = self._nv(index)
            if nv is None:
                raise MfpsecError(
                    ErrorCode.TPM_FAILED,
                    command="NV_Increment",
                    code=f"index 0x{index:08x} not defined",
                )
            try:
                self._ctx().nv_increment(nv, ESYS_TR.OWNER)
                return int.from_bytes(bytes(self._ctx().nv_read(nv, 8, 0, ESYS_TR.OWNER)), "big")
            except TSS2_Exception as exc:
                raise translate(exc, "NV_Increment") from None
            finally:
                self._ctx().tr_close(nv)

        return await self._call(run)

    async def counter_undefine(self, index: int) -> None:
        def run() -> None:
            nv = self._nv(index)
            if nv is None:
                return
            try:
                self._ctx().nv_undefine_space(nv, ESYS_TR.OWNER)
            except TSS2_Exception as exc:
                raise translate(exc, "NV_UndefineSpace") from None

        await self._call(run)

    # ---- PCRs (the measured firmware, F-4)

    def _pcr_value(self, index: int) -> bytes:
        try:
            _, _, values = self._ctx().pcr_read(TPML_PCR_SELECTION.parse(f"sha256:{index}"))
        except TSS2_Exception as exc:
            raise translate(exc, "PCR_Read") from None
        if len(values) != 1:
            raise MfpsecError(
                ErrorCode.TPM_FAILED, command="PCR_Read", code=f"no SHA-256 bank for PCR {index}"
            )
        return bytes(values[0])

    async def pcr_extend(self, index: int, digest: bytes) -> bytes | None:
        if len(digest) != 32 or not 0 <= index <= 23:
            raise ValueError("a SHA-256 digest into PCR 0-23")

        def run() -> bytes:
            values = TPML_DIGEST_VALUES(
                [TPMT_HA(hashAlg=TPM2_ALG.SHA256, digest=TPMU_HA(sha256=digest))]
            )
            try:
                self._ctx().pcr_extend(ESYS_TR.parse(f"pcr{index}"), values)
            except TSS2_Exception as exc:
                raise translate(exc, "PCR_Extend") from None
            return self._pcr_value(index)

        return await self._call(run)

    async def pcr_read(self, index: int) -> bytes | None:
        return await self._call(lambda: self._pcr_value(index))
