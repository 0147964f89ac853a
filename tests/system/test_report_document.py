"""The signed posture report's document and reporter (issue 30, part 4), in process: the
canonical form is the only form (its SHA-256 names it), DEL escaped as jq writes it so
that openssl checks the bytes jq gives; an offline check trusts the identity given,
never the key carried; asked in a loop, the TPM signs at most once per REUSE_S; a key
that changed under the signature is refused."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mfpsecd.base.clock import rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.identity_keys import fingerprint
from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.model.identity_history import KnownIdentity
from mfpsecd.system import report_document as pr
from mfpsecd.system.model.security_level import Hardening
from mfpsecd.system.ports import DeviceFacts
from mfpsecd.system.posture import PostureBook
from mfpsecd.system.report import REUSE_S, PostureReporter
from mfpsecd.system.status import BoardInfo, StatusService
from tests.support.fakeclock import FakeClock


def _der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class _Tpm:
    """The identity key's signer, counting signatures; `swap` replaces the key after
    the identity was read (a restore onto a new TPM at the wrong moment)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signatures = 0
        self.swap: ec.EllipticCurvePrivateKey | None = None

    async def sign(self, digest: bytes) -> tuple[bytes, bytes]:
        if self.swap is not None:
            self.key = self.swap
        self.signatures += 1
        sig = self.key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return sig, _der(self.key)


def _reporter(
    tmp_path: Path, clock: FakeClock, tpm: _Tpm, detail: str = ""
) -> tuple[PostureReporter, SqliteState, ec.EllipticCurvePrivateKey]:
    state = SqliteState(tmp_path / "state.sqlite3")
    book = PostureBook(state, clock)
    original = tpm.key

    async def items() -> list[PostureItem]:
        return [PostureItem(PostureId.IP_FILTER, PostureState.ON, "2 ranges", detail)]

    async def identities() -> list[KnownIdentity]:
        return [KnownIdentity(fingerprint(_der(original)), _der(original), "", None)]

    async def hardening() -> Hardening:
        return Hardening(True, "slot a", False, 0, "")

    book.add_source([PostureId.IP_FILTER], items)
    reporter = PostureReporter(
        book,
        StatusService(clock, HealthRegistry(clock), BoardInfo("sim", "simulated")),
        clock,
        signer=tpm.sign,
        identities=identities,
        hardening=hardening,
        device=lambda: DeviceFacts("C300i", "S1", "sim", "2.3.0", 32473),
    )
    return reporter, state, original


def test_a_loop_of_requests_costs_one_signature_per_period(tmp_path: Path) -> None:
    clock, tpm = FakeClock(), _Tpm()

    async def scenario() -> None:
        reporter, state, _ = _reporter(tmp_path, clock, tpm)
        await state.open()
        first = await reporter.issue()
        for _ in range(20):
            assert await reporter.issue() is first
        assert tpm.signatures == 1
        await clock.advance(REUSE_S + 0.1)
        later = await reporter.issue()
        assert tpm.signatures == 2 and later.report.at > first.report.at
        assert later.report.at == rfc3339(clock)
        await state.close()

    asyncio.run(scenario())


def test_an_identity_that_changes_under_the_signature_is_refused(tmp_path: Path) -> None:
    clock, tpm = FakeClock(), _Tpm()

    async def scenario() -> None:
        reporter, state, _ = _reporter(tmp_path, clock, tpm)
        await state.open()
        tpm.swap = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(MfpsecError) as info:
            await reporter.issue()
        assert info.value.code is ErrorCode.KEYS_UNAVAILABLE
        assert "changed while the report was signed" in str(info.value.params["reason"])
        await state.close()

    asyncio.run(scenario())


def test_only_the_canonical_bytes_are_a_report_and_jq_gives_them(tmp_path: Path) -> None:
    clock, tpm = FakeClock(), _Tpm()

    async def scenario() -> bytes:
        # A setting that quotes a device's string with DEL and an escape in it.
        reporter, state, _ = _reporter(tmp_path, clock, tpm, detail="name \x7f\x1b[2J end")
        await state.open()
        doc = await reporter.issue()
        await state.close()
        return pr.encode_document(doc)

    document = asyncio.run(scenario())
    assert b"\x7f" not in document and b"\\u007f" in document
    assert pr.decode_document(document).report.level == 0
    assert pr.decode_document(document + b"\n")  # a file with a final newline
    spaced = json.dumps(json.loads(document), indent=1).encode()
    reordered = msgspec.json.encode(json.loads(document))  # keys not sorted
    for other in (spaced, reordered, document.replace(b"\\u007f", b"\x7f")):
        with pytest.raises(ValueError, match="canonical form"):
            pr.decode_document(other)
    # openssl checks the bytes jq gives, with the identity key alone.
    kept = tmp_path / "report.json"
    kept.write_bytes(document)
    body = subprocess.run(["jq", "-jcS", ".report", str(kept)], capture_output=True, check=True)
    assert body.stdout == pr.canonical(pr.decode_document(document).report)
    (tmp_path / "body.json").write_bytes(body.stdout)
    sig = bytes.fromhex(json.loads(document)["signature"]["value"])
    (tmp_path / "body.sig").write_bytes(sig)
    (tmp_path / "identity.pem").write_bytes(_pem(tpm.key))
    ok = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(tmp_path / "identity.pem"),
            "-signature",
            str(tmp_path / "body.sig"),
            str(tmp_path / "body.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.stdout.strip() == "Verified OK", ok.stderr


def test_the_offline_check_trusts_the_identity_given_never_the_key_carried(
    tmp_path: Path,
) -> None:
    clock, tpm = FakeClock(), _Tpm()

    async def scenario() -> bytes:
        reporter, state, _ = _reporter(tmp_path, clock, tpm)
        await state.open()
        doc = await reporter.issue()
        await state.close()
        return pr.encode_document(doc)

    document = asyncio.run(scenario())
    identity = _pem(tpm.key).decode()
    verdict = pr.verify_offline(document, identity)
    assert verdict.identity == fingerprint(_der(tpm.key))
    # Another key of someone's own, carried in the document, signing a raised level.
    mallory = ec.generate_private_key(ec.SECP256R1())
    forged = json.loads(document)
    forged["report"]["level_text"] = "MFPSEC:3"
    body = pr.canonical(msgspec.convert(forged["report"], pr.ReportBody))
    forged["signature"] = {
        "alg": pr.SIGNATURE_ALG,
        "public_key": _pem(mallory).decode(),
        "value": mallory.sign(body, ec.ECDSA(hashes.SHA256())).hex(),
    }
    forged_doc = msgspec.json.encode(forged, order="sorted")
    with pytest.raises(MfpsecError) as info:
        pr.verify_offline(forged_doc, identity)
    assert info.value.code is ErrorCode.SYSTEM_REPORT_FOREIGN
    assert info.value.params["fingerprint"] == fingerprint(_der(mallory))
    for bad_identity in ("", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(MfpsecError) as info:
            pr.verify_offline(document, bad_identity)
        assert info.value.code is ErrorCode.INVALID_PARAMETER
    with pytest.raises(MfpsecError) as info:
        pr.verify_offline(b"\xff\xfe not json", identity)
    assert info.value.code is ErrorCode.SYSTEM_REPORT_INVALID
