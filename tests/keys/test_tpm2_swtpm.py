"""The tpm2-pytss backend against a real swtpm: keys, signatures, duplication and import,
NV counters, error translation, recovery from a killed user, and what crosses the bus."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.swtpm import _free_port_pair
from mfpsecd.keys.backends.tpm2 import Tpm2Backend
from mfpsecd.keys.model.pcr_policy import PcrBinding
from tests.support.daemon import ROOT
from tests.support.tpm import LegacyTpm, requires_swtpm, swtpm

pytestmark = requires_swtpm
T = TypeVar("T")
LABEL = b"test label\0"
COUNTER = 0x01000123
UNBOUND = PcrBinding((), ())  # the commands only, no PCRs


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("F-1", "F-5")
def test_keys_signatures_and_counters(tmp_path: Path) -> None:
    with swtpm(tmp_path / "tpm") as tpm:

        async def scenario() -> None:
            t = tpm.backend()
            await t.open()
            assert (t.info.backend, t.info.hardware_root, t.info.manufacturer) == (
                "swtpm",
                True,
                "IBM",
            )
            signing = await t.create_signing_key()
            public = serialization.load_der_public_key(await t.public_key_der(signing))
            assert isinstance(public, ec.EllipticCurvePublicKey)
            digest = hashlib.sha256(b"certificate of sanitization").digest()
            signature = await t.sign_digest(signing, digest)
            public.verify(signature, b"certificate of sanitization", ec.ECDSA(hashes.SHA256()))

            assert await t.counter_read(COUNTER) is None
            with pytest.raises(MfpsecError) as exc:
                await t.counter_increment(COUNTER)
            assert exc.value.code is ErrorCode.TPM_FAILED
            await t.counter_define(COUNTER)
            first = await t.counter_read(COUNTER)
            assert first is not None
            assert await t.counter_increment(COUNTER) == first + 1
            assert await t.counter_read(COUNTER) == first + 1
            await t.counter_undefine(COUNTER)
            assert await t.counter_read(COUNTER) is None
            await t.close()

        run(scenario())


def test_export_import_moves_the_wrapping_key_to_another_tpm(tmp_path: Path) -> None:
    crypto = NativeKeyCrypto()
    with swtpm(tmp_path / "a") as a:

        async def make() -> tuple[Any, bytes, bytes, SecretBytes]:
            t = a.backend()
            await t.open()
            key = await t.create_wrapping_key(UNBOUND)
            master = SecretBytes(bytearray(b"\x5a" * 32))
            wrapped = crypto.wrap(await t.public_key_der(key), LABEL, master)
            exported = await t.export_key(key)
            await t.close()
            return key, wrapped, bytes(master.view()), exported

        key, wrapped, master, exported = run(make())
    with swtpm(tmp_path / "b") as b:

        async def move() -> None:
            t = b.backend()
            await t.open()
            with pytest.raises(MfpsecError) as exc:  # the blob is bound to TPM a's SRK
                await t.decrypt(key, wrapped, LABEL)
            assert exc.value.code is ErrorCode.KEY_INTEGRITY
            imported = await t.import_key(key.public, exported, UNBOUND)
            assert imported.public == key.public and imported.private != key.private
            with await t.decrypt(imported, wrapped, LABEL) as out:
                assert bytes(out.view()) == master
            with pytest.raises(MfpsecError) as exc:  # a ciphertext this key never made
                await t.decrypt(imported, bytes(256), LABEL)
            assert exc.value.code is ErrorCode.KEY_INTEGRITY
            with pytest.raises(ValueError):
                await t.decrypt(imported, wrapped, b"no terminating NUL")
            await t.close()

        run(move())


def test_unreachable_tpm_is_a_typed_error() -> None:
    async def scenario() -> None:
        port = _free_port_pair()  # nothing listens there
        t = Tpm2Backend(f"swtpm:host=127.0.0.1,port={port}", "swtpm")
        with pytest.raises(MfpsecError) as exc:
            await t.open()
        assert exc.value.code is ErrorCode.TPM_FAILED
        assert "unreachable" in exc.value.params["code"]
        await t.close()

    run(scenario())


KILLED_USER = """
import asyncio, os, sys
from mfpsecd.keys.backends.tpm2 import Tpm2Backend
from mfpsecd.keys.model.pcr_policy import PcrBinding
async def main():
    t = Tpm2Backend(sys.argv[1], "swtpm")
    await t.open()
    await t.create_signing_key()
    k = await t.create_wrapping_key(PcrBinding((), ()))
    await t.public_key_der(k)
    await t.export_key(k)   # loads the key, uses a policy session
    os._exit(0)             # killed: nothing flushed
asyncio.run(main())
"""


def test_a_killed_user_does_not_exhaust_the_tpm(tmp_path: Path) -> None:
    """swtpm has no resource manager and three object slots: without the flush at open,
    the second killed run would leave the TPM unusable."""
    with swtpm(tmp_path / "tpm") as tpm:
        for _ in range(4):
            r = subprocess.run(
                [sys.executable, "-c", KILLED_USER, tpm.tcti],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert r.returncode == 0, r.stderr

        async def after() -> None:
            t = tpm.backend()
            await t.open()
            key = await t.create_wrapping_key(UNBOUND)
            with await t.export_key(key) as exported:
                assert len(exported) > 100
            await t.close()

        run(after())


def _bus(log: Path) -> tuple[bytes, bytes]:
    """(all commands, all responses) from a swtpm level-20 log's hex dumps."""
    commands, responses = b"", b""
    for block in re.split(r"\n (?=SWTPM_IO_|Ctrl )", log.read_text()):
        head, _, body = block.partition("\n")
        raw = bytes.fromhex("".join(body.split()))
        if "SWTPM_IO_Read" in head:
            commands += raw
        elif "SWTPM_IO_Write" in head:
            responses += raw
    return commands, responses


@pytest.mark.sfr("FCS_COP.1", "FPT_KYP_EXT.1")
@pytest.mark.spec("K-1", "K-2", "K-4")
def test_the_unwrapped_master_key_never_crosses_the_bus_in_clear(tmp_path: Path) -> None:
    from tpm2_pytss.constants import TPM2_ALG, TPM2_CC
    from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC

    from mfpsecd.keys.backends.tpm2 import _OAEP

    state, log = tmp_path / "tpm", tmp_path / "swtpm.log"
    state.mkdir()
    port = _free_port_pair()
    proc = subprocess.Popen(
        [
            "swtpm",
            "socket",
            "--tpm2",
            "--server",
            f"type=tcp,port={port},bindaddr=127.0.0.1",
            "--ctrl",
            f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
            "--flags",
            "not-need-init,startup-clear",
            "--tpmstate",
            f"dir={state}",
            "--log",
            f"file={log},level=20",
        ]
    )
    master = bytes(range(0x40, 0x60))
    try:
        deadline = time.monotonic() + 5
        while (
            "SWTPM" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline
        ):
            time.sleep(0.01)

        async def scenario() -> bytes:
            t = Tpm2Backend(f"swtpm:host=127.0.0.1,port={port}", "swtpm")
            await t.open()
            key = await t.create_wrapping_key(UNBOUND)
            wrapped = NativeKeyCrypto().wrap(
                await t.public_key_der(key), LABEL, SecretBytes(bytearray(master))
            )
            with await t.decrypt(key, wrapped, LABEL) as out:
                assert bytes(out.view()) == master
            _, responses = _bus(log)
            assert master not in responses  # the backend's way: an encrypted response
            # Control: the same command without an encrypting session shows the key.
            esys = t._ctx()
            handle = esys.load(
                t._srk_handle(),
                TPM2B_PRIVATE.unmarshal(key.private)[0],
                TPM2B_PUBLIC.unmarshal(key.public)[0],
            )
            assert TPM2_ALG.OAEP
            policy = t._policy_session(key, TPM2_CC.RSA_Decrypt)
            esys.rsa_decrypt(handle, wrapped, _OAEP, LABEL, session1=policy)
            esys.flush_context(policy)
            await t.close()
            return wrapped

        wrapped = run(scenario())
    finally:
        proc.terminate()
        proc.wait(10)
    commands, responses = _bus(log)
    assert wrapped in commands  # the log does carry command parameters
    assert responses.count(master) == 1  # only the control's clear response


# ---- the wrapping key bound to PCR values (core.pcr_policy)

FIRMWARE = hashlib.sha256(b"manifest of firmware 1").digest()
NEXT_FIRMWARE = hashlib.sha256(b"manifest of firmware 2").digest()


def test_the_offline_policy_is_the_one_the_tpm_computes(tmp_path: Path) -> None:
    """core.pcr_policy computes the branches and the PolicyOR without a TPM; a trial
    session on a real one must end on the same digest, or no key would ever open."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_CC, TPM2_SE
    from tpm2_pytss.types import TPM2B_DIGEST, TPML_DIGEST, TPML_PCR_SELECTION, TPMT_SYM_DEF

    bindings = [
        UNBOUND,
        PcrBinding((14,), (FIRMWARE,)),
        PcrBinding((7, 14, 23), (bytes(32), FIRMWARE, NEXT_FIRMWARE)),
    ]
    with swtpm(tmp_path / "tpm") as tpm:

        async def scenario() -> None:
            t = tpm.backend()
            await t.open()
            esys = t._ctx()
            for binding in bindings:
                for command, branch in zip(
                    (TPM2_CC.RSA_Decrypt, TPM2_CC.Duplicate), binding.branches, strict=True
                ):
                    trial = esys.start_auth_session(
                        ESYS_TR.NONE,
                        ESYS_TR.NONE,
                        TPM2_SE.TRIAL,
                        TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
                        TPM2_ALG.SHA256,
                    )
                    if binding.pcrs:
                        esys.policy_pcr(
                            trial,
                            TPM2B_DIGEST(binding.pcr_digest),
                            TPML_PCR_SELECTION.unmarshal(binding.selection)[0],
                        )
                    esys.policy_command_code(trial, command)
                    assert bytes(esys.policy_get_digest(trial)) == branch
                    esys.policy_or(trial, TPML_DIGEST(list(binding.branches)))
                    assert bytes(esys.policy_get_digest(trial)) == binding.policy
                    esys.flush_context(trial)
            await t.close()

        run(scenario())


def test_a_bound_key_opens_only_while_the_pcrs_hold_its_values(tmp_path: Path) -> None:
    crypto = NativeKeyCrypto()
    master = SecretBytes(bytearray(b"\x33" * 32))
    with swtpm(tmp_path / "tpm") as tpm:

        async def scenario() -> None:
            t = tpm.backend()
            await t.open()
            measured = await t.pcr_extend(14, FIRMWARE)
            assert measured is not None
            key = await t.create_wrapping_key(PcrBinding((14,), (measured,)))
            wrapped = crypto.wrap(await t.public_key_der(key), LABEL, master)
            with await t.decrypt(key, wrapped, LABEL) as out:
                assert bytes(out.view()) == bytes(master.view())
            # Bound for the next firmware before it runs: the same RSA key (same public
            # key, same wrapped master key) under the policy of the value to come.
            expected = hashlib.sha256(measured + NEXT_FIRMWARE).digest()
            with await t.export_key(key) as sensitive:
                next_key = await t.import_key(key.public, sensitive, PcrBinding((14,), (expected,)))
            assert await t.public_key_der(next_key) == await t.public_key_der(key)
            with pytest.raises(MfpsecError) as exc:  # not yet: PCR 14 is still firmware 1
                await t.decrypt(next_key, wrapped, LABEL)
            assert exc.value.code is ErrorCode.KEYS_UNAVAILABLE
            assert "PCR 14" in exc.value.params["reason"]
            assert await t.pcr_extend(14, NEXT_FIRMWARE) == expected
            with await t.decrypt(next_key, wrapped, LABEL) as out:
                assert bytes(out.view()) == bytes(master.view())
            # Once PCR 14 moved on, the old binding opens nothing, not even a backup.
            for attempt in (t.decrypt(key, wrapped, LABEL), t.export_key(key)):
                with pytest.raises(MfpsecError) as exc:
                    await attempt
                assert exc.value.code is ErrorCode.KEYS_UNAVAILABLE
            await t.close()

        run(scenario())


def test_a_bound_key_has_no_auth_value_that_opens_it(tmp_path: Path) -> None:
    """What another OS on the controller would try with the blob from the disk: the
    empty auth value (user role) and the admin role are both refused by the TPM."""
    from tpm2_pytss import TSS2_Exception
    from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC

    from mfpsecd.keys.backends.tpm2 import _OAEP

    crypto = NativeKeyCrypto()
    with swtpm(tmp_path / "tpm") as tpm:

        async def scenario() -> None:
            t = tpm.backend()
            await t.open()
            key = await t.create_wrapping_key(PcrBinding((14,), (bytes(32),)))
            wrapped = crypto.wrap(await t.public_key_der(key), LABEL, SecretBytes(bytearray(32)))
            esys = t._ctx()
            handle = esys.load(
                t._srk_handle(),
                TPM2B_PRIVATE.unmarshal(key.private)[0],
                TPM2B_PUBLIC.unmarshal(key.public)[0],
            )
            with pytest.raises(TSS2_Exception) as refused:
                esys.rsa_decrypt(handle, wrapped, _OAEP, LABEL)
            assert "authValue or authPolicy is not available" in str(refused.value)
            with pytest.raises(TSS2_Exception):  # admin role: a new auth value for it
                esys.object_change_auth(handle, t._srk_handle(), b"chosen")
            await t.close()

        run(scenario())


def test_a_key_from_before_the_binding_is_bound_by_reimport(tmp_path: Path) -> None:
    """A chain provisioned before PCR binding has a key its empty auth value opens; the
    chain moves it under a policy, and the result no longer opens by auth value."""
    crypto = NativeKeyCrypto()
    master = SecretBytes(bytearray(b"\x77" * 32))
    with swtpm(tmp_path / "tpm") as tpm:

        async def scenario() -> None:
            t = LegacyTpm(tpm.tcti, "swtpm")
            await t.open()
            # As it was stored before binding: no binding, opened by its auth value.
            legacy = dataclasses.replace(await t.create_wrapping_key(UNBOUND), binding=None)
            wrapped = crypto.wrap(await t.public_key_der(legacy), LABEL, master)
            with await t.decrypt(legacy, wrapped, LABEL) as out:  # by its auth value
                assert bytes(out.view()) == bytes(master.view())
            measured = await t.pcr_extend(14, FIRMWARE)
            assert measured is not None
            with await t.export_key(legacy) as sensitive:
                bound = await t.import_key(legacy.public, sensitive, PcrBinding((14,), (measured,)))
            assert bound.public != legacy.public  # the policy and attributes changed
            with await t.decrypt(bound, wrapped, LABEL) as out:
                assert bytes(out.view()) == bytes(master.view())
            await t.pcr_extend(14, NEXT_FIRMWARE)
            with pytest.raises(MfpsecError) as exc:
                await t.decrypt(bound, wrapped, LABEL)
            assert exc.value.code is ErrorCode.KEYS_UNAVAILABLE
            await t.close()

        run(scenario())
