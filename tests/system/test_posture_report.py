"""The signed posture report (issue 30, part 4) from the real daemon on a simulated board
with verified firmware, in enhanced security mode: graded into a security level that
follows what the administrator does, signed by the device identity key in the (software)
TPM, checked offline against the identity an auditor recorded, by the daemon against
every identity the device has had, and by openssl as README says; an altered report
and one re-signed with someone else's key are refused, both ways; the PDF is rendered
by the CLI, from the daemon's report or from a kept one."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.base.errors import EX_DATAERR
from mfpsecd.base.identity_keys import fingerprint
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CONFIG, Cli
from tests.support.firmware_bundle import MODEL, make_tree, sign_tree
from tests.support.firmware_pki import ROOT, pem_of
from tests.support.tpm import requires_swtpm

pytestmark = [pytest.mark.root, requires_swtpm]


def _firmware_board(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A board with a signed firmware slot, verified at this power-on as the boot unit
    does; the daemon's configuration in enhanced security mode."""
    (root / "fw-root.pem").write_bytes(pem_of(ROOT))
    slot = root / "lib" / "firmware" / "a"
    make_tree(slot / "tree")
    sign_tree(slot, epoch=3)
    board: dict[str, Any] = {
        "extra": {"firmware": {"model": MODEL, "roots": [str(root / "fw-root.pem")]}}
    }
    board_path = ds.write_board(root, **board)
    config = root / "mfpsecd.toml"
    config.write_text(
        ds.toml_doc({"daemon": {"board_dir": str(root)}, "security": {"mode": "enhanced"}})
    )
    boot = subprocess.run(
        [*ds.MFPSECD, "fw-verify", "--boot", "--config", str(config), "--board", str(board_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ds.ROOT,
    )
    assert boot.returncode == 0, boot.stderr
    return board, {**CONFIG, "security": {"mode": "enhanced"}}


def _checks(doc: dict[str, Any]) -> dict[str, bool]:
    return {c["id"]: c["met"] for c in doc["report"]["checks"]}


def _resigned(document: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """What an attacker who controls the disk makes: the report altered, signed with a
    key of their own, and that key put in the document."""
    doc = json.loads(document)
    doc["report"]["level"], doc["report"]["level_text"] = 3, "MFPSEC:3"
    body = msgspec.json.encode(msgspec.json.decode(json.dumps(doc["report"])), order="sorted")
    doc["signature"]["value"] = key.sign(body, ec.ECDSA(hashes.SHA256())).hex()
    doc["signature"]["public_key"] = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return msgspec.json.encode(doc, order="sorted")


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("S-1", "S-3")
def test_the_report_grades_signs_and_holds_against_forgery(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    root = short_tmp / "d"
    root.mkdir()
    board, config = _firmware_board(root)
    with ds.running(root, config=config, board=board) as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        env = {"XDG_RUNTIME_DIR": str(cli.runtime_dir(0))}

        def mfpsec(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return ds.mfpsec(d.socket_path, *args, stdin=stdin, env=env)

        # First start: no administrator password, so level 0, whatever else holds.
        first = mfpsec("posture", "report", "--json")
        assert first.returncode == 0, first.stderr
        doc = json.loads(first.stdout)
        report = doc["report"]
        assert (report["level"], report["level_text"]) == (0, "MFPSEC:0")
        checks = _checks(doc)
        assert not checks["admin-password"]
        assert checks["firmware-verified"] and checks["firmware-verification-enhanced"]
        assert checks["storage-encryption"] and checks["tpm"]
        assert checks["keys-firmware-policy"]  # the wrapping key opens under PCR 14 only
        assert not checks["firmware-rewrite-lock"] and not checks["post-quantum-signatures"]
        assert [i["id"] for i in report["items"]][:2] == ["admin-password", "storage-encryption"]
        assert report["device"]["firmware"] == "2.3.0"
        hcd = report["hcd"]
        assert hcd["DefaultPasswordEnabled"] is True
        assert (hcd["MachineTypeModel"], hcd["AttributesNaturalLanguage"]) == (
            report["device"]["model"],
            "en",
        )
        assert hcd["FirmwareStringVersion"] == "2.3.0"
        # This board lists no network interface: nothing to filter, and no level 2.
        assert hcd["FirewallSetting"] == "not_applicable"

        # The administrator sets a password and prohibits firmware rewrites.
        cli.ok(0, "users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(ALICE_UID, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(ALICE_UID, "fw", "lock", "--password-file", "-", stdin=ADMIN_PW)
        kept, pdf = short_tmp / "report.json", short_tmp / "report.pdf"
        r = mfpsec("posture", "report", "-o", str(kept), "--pdf", str(pdf))
        assert r.returncode == 0, r.stderr
        document = kept.read_bytes()
        doc = json.loads(document)
        report = doc["report"]
        checks = _checks(doc)
        assert checks["admin-password"] and checks["firmware-rewrite-lock"]
        assert report["hcd"]["DefaultPasswordEnabled"] is False
        # Level 1 in full; level 2 waits for the IP filter and the audit forwarding.
        assert (report["level"], report["level_text"]) == (1, "MFPSEC:1")
        assert {k for k, met in checks.items() if not met} == {
            "ip-filter",
            "audit-forwarding",
            "post-quantum-signatures",
        }
        summary = mfpsec("posture", "report")
        assert "security level: MFPSEC:1" in summary.stdout
        assert "not met  IP filter" in summary.stdout

        # The auditor recorded the identity (public key and certificate) beforehand.
        identity = json.loads(mfpsec("keys", "identity", "--json").stdout)
        key_pem, cert_pem = short_tmp / "identity.pem", short_tmp / "identity-cert.pem"
        key_pem.write_text(identity["public_key_pem"])
        cert_pem.write_text(identity["certificate_pem"])
        assert report["device"]["identity"] == identity["fingerprint"]
        for recorded in (key_pem, cert_pem):
            ok = mfpsec("posture", "verify", str(kept), "--identity", str(recorded), "--json")
            assert ok.returncode == 0, ok.stderr
            verdict = json.loads(ok.stdout)
            assert (verdict["identity"], verdict["level_text"]) == (
                identity["fingerprint"],
                "MFPSEC:1",
            )
            assert verdict["sha256"] == hashlib.sha256(document).hexdigest()
        online = mfpsec("posture", "verify", str(kept))
        assert online.returncode == 0, online.stderr
        assert "valid: signed by this device (the identity key it holds now" in online.stdout

        # Without this software: the canonical report and openssl, as README shows.
        body = subprocess.run(
            ["jq", "-jcS", ".report", str(kept)], capture_output=True, check=True
        ).stdout
        signature = short_tmp / "report.sig"
        signature.write_bytes(bytes.fromhex(doc["signature"]["value"]))
        (short_tmp / "body.json").write_bytes(body)
        openssl = subprocess.run(
            [
                "openssl",
                "dgst",
                "-sha256",
                "-verify",
                str(key_pem),
                "-signature",
                str(signature),
                str(short_tmp / "body.json"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert openssl.stdout.strip() == "Verified OK", openssl.stderr

        # Altered: the level raised in place. Refused offline and by the daemon.
        altered = short_tmp / "altered.json"
        forged = json.loads(document)
        forged["report"]["level"], forged["report"]["level_text"] = 3, "MFPSEC:3"
        altered.write_bytes(msgspec.json.encode(forged, order="sorted"))
        for args in (("--identity", str(key_pem)), ()):
            bad = mfpsec("posture", "verify", str(altered), *args)
            assert bad.returncode == EX_DATAERR
            assert "ReportInvalid" in bad.stderr and "does not match" in bad.stderr
        # The genuine report spaced out: the same content, another document.
        respaced = short_tmp / "respaced.json"
        respaced.write_text(json.dumps(json.loads(document), indent=1))
        for args in (("--identity", str(key_pem)), ()):
            bad = mfpsec("posture", "verify", str(respaced), *args)
            assert bad.returncode == EX_DATAERR and "canonical form" in bad.stderr
        # Re-signed with the attacker's key, carried in the document: refused as foreign,
        # naming that key, never accepted because the document vouches for itself.
        mallory = ec.generate_private_key(ec.SECP256R1())
        foreign = short_tmp / "foreign.json"
        foreign.write_bytes(_resigned(document, mallory))
        mallory_fp = fingerprint(
            mallory.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        for args in (("--identity", str(key_pem)), ()):
            bad = mfpsec("posture", "verify", str(foreign), *args)
            assert bad.returncode == EX_DATAERR
            assert "ReportForeign" in bad.stderr and mallory_fp in bad.stderr
        # A genuine report checked against another identity than the one recorded.
        other = short_tmp / "other.pem"
        other.write_bytes(
            mallory.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        bad = mfpsec("posture", "verify", str(kept), "--identity", str(other))
        assert bad.returncode == EX_DATAERR and "ReportForeign" in bad.stderr
        garbage = short_tmp / "garbage.pem"
        garbage.write_text("not a key")
        bad = mfpsec("posture", "verify", str(kept), "--identity", str(garbage))
        assert bad.returncode == EX_DATAERR and "InvalidParameter" in bad.stderr
        not_json = short_tmp / "not.json"
        not_json.write_bytes(b"\x1b]0;owned\x07{")
        bad = mfpsec("posture", "verify", str(not_json))
        assert bad.returncode == EX_DATAERR and "ReportInvalid" in bad.stderr
        assert "\x1b" not in bad.stderr

    # The PDF: rendered by the CLI, from the daemon's report, and again from the kept
    # one with no daemon running.
    text = _pdf_text(pdf)
    assert "Security posture report" in text and "MFPSEC:1" in text
    assert identity["fingerprint"] in text.replace("\n", "")
    assert hashlib.sha256(document).hexdigest() in text.replace("\n", "")
    nowhere = str(short_tmp / "no-daemon.sock")
    again = short_tmp / "again.pdf"
    r = ds.mfpsec(
        nowhere,
        "posture",
        "report",
        "--from",
        str(kept),
        "--identity",
        str(key_pem),
        "--pdf",
        str(again),
    )
    assert r.returncode == 0, r.stderr
    assert "MFPSEC:1" in _pdf_text(again) and "NOT VERIFIED" not in _pdf_text(again)
    # Unchecked, the page says so; and a forged file is refused before it is rendered.
    r = ds.mfpsec(nowhere, "posture", "report", "--from", str(kept), "--pdf", str(again))
    assert r.returncode == 0, r.stderr
    assert "NOT VERIFIED" in _pdf_text(again)
    r = ds.mfpsec(
        nowhere,
        "posture",
        "report",
        "--from",
        str(foreign),
        "--identity",
        str(key_pem),
        "--pdf",
        str(short_tmp / "forged.pdf"),
    )
    assert r.returncode == EX_DATAERR and "ReportForeign" in r.stderr
    assert not (short_tmp / "forged.pdf").exists()


def _pdf_text(pdf: Path) -> str:
    assert pdf.read_bytes().startswith(b"%PDF-")
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
