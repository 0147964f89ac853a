"""The audit log through the running daemon: key operations are recorded with who did
them and how they ended, the chain verifies, and tampering with the device's log file or
with an export is found by `mfpsec audit verify` and located."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mfpsecd.audit import log_format as auditlog
from mfpsecd.audit.frames import frame, scan
from mfpsecd.base.errors import EX_DATAERR
from mfpsecd.client import Connection
from mfpsecd.keys import api as keys
from tests.support import daemon as ds
from tests.support.tpm import requires_swtpm

pytestmark = requires_swtpm


def _show(d: ds.DaemonProcess, *args: str) -> list[dict[str, Any]]:
    r = ds.mfpsec(d.socket_path, "audit", "show", "--json", "--limit", "0", *args)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


@pytest.mark.sfr("FAU_GEN.1")
@pytest.mark.spec("L-1")
def test_key_operations_are_audited_and_the_log_verifies(short_tmp: Path) -> None:
    root = short_tmp / "d"
    with ds.running(root) as d:
        k = Connection(d.socket_path)
        k.call(
            keys.SET_SECRET,
            keys.SetSecretParams("smtp-password", "credential", bytearray(b"pa55word")),
        )
        k.call(keys.ROTATE_MASTER_KEY)
        bad = ds.mfpsec(d.socket_path, "secrets", "delete", "nope")
        assert bad.returncode == EX_DATAERR
        weak = ds.mfpsec(
            d.socket_path,
            "keys",
            "backup",
            "--to",
            str(short_tmp),
            "--passphrase-file",
            "-",
            stdin="short",
        )
        assert weak.returncode == EX_DATAERR
        entries = _show(d)
        kinds = [(e["type"], e["outcome"]) for e in entries]
        assert kinds[:4] == [
            ("audit.start", "success"),
            ("self_test", "success"),
            ("keys.provision", "success"),
            ("keys.unlock", "success"),
        ]
        assert entries[2]["details"]["tpm"] == "swtpm"  # FCS_CKM.1: this start made them
        self_test = entries[1]["details"]  # FPT_TST_EXT.1: the swtpm ran its own, too
        assert self_test["tpm"].startswith("TPM2_SelfTest (full)")
        assert self_test["tests"].endswith(", tpm") and "argon2id" in self_test["tests"]
        assert ("secret.set", "success") in kinds and ("keys.rotate", "success") in kinds
        (failed_delete,) = [e for e in entries if e["type"] == "secret.delete"]
        assert failed_delete["outcome"] == "failure"
        assert failed_delete["details"] == {"error": "io.mfpsecd.Keys.SecretNotFound"}
        assert failed_delete["subject"]["origin"] == "system"  # root, through the CLI
        assert failed_delete["subject"]["pid"] > 0
        (backup,) = [e for e in entries if e["type"] == "keys.backup"]
        assert (backup["outcome"], backup["details"]["error"]) == (
            "failure",
            "io.mfpsecd.Keys.PassphraseTooWeak",
        )
        # No secret in the log: only names and metadata.
        assert "pa55word" not in json.dumps(entries)
        only = _show(d, "--type", "secret.set", "--outcome", "success")
        assert [e["object"] for e in only] == ["smtp-password"]
        assert [e["type"] for e in _show(d)][-1] == "audit.read"  # reading is audited

        ok = ds.mfpsec(d.socket_path, "audit", "verify")
        assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout + ok.stderr
        export = short_tmp / "audit.jsonl"
        assert ds.mfpsec(d.socket_path, "audit", "export", "--to", str(export)).returncode == 0

    # Offline: the export, and the device's own file, verify without the daemon.
    log = root / "lib" / "audit" / "audit-00000001.log"
    for path in (export, log):
        r = ds.mfpsec("/nonexistent.sock", "audit", "verify", str(path))
        assert r.returncode == 0 and "intact" in r.stdout, r.stdout + r.stderr

    lines = export.read_text().splitlines()
    tampered = short_tmp / "tampered.jsonl"
    i = next(n for n, line in enumerate(lines) if n >= 3 and '"outcome":"success"' in line)
    edited = lines[i].replace('"outcome":"success"', '"outcome":"failure"')
    for name, content, problem in [
        ("edited", [*lines[:i], edited, *lines[i + 1 :]], f"modified at record {i + 1}"),
        ("deleted", lines[:i] + lines[i + 1 :], f"deleted at record {i + 1}"),
        (
            "reordered",
            [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]],
            f"reordered at record {i + 1}",
        ),
        ("inserted", [*lines[:i], lines[1], *lines[i:]], f"inserted at record {i + 1}"),
    ]:
        tampered.write_text("\n".join(content) + "\n")
        r = ds.mfpsec("/nonexistent.sock", "audit", "verify", str(tampered))
        assert r.returncode == EX_DATAERR and problem in r.stdout, (name, r.stdout)

    # The device file: a record changed in place (checksum fixed up, as an attacker would).
    payloads, _, _ = scan(log.read_bytes())
    forged = payloads[3].replace(b'"outcome":"success"', b'"outcome":"failure"')
    data = b"".join(frame(p) for p in [*payloads[:3], forged, *payloads[4:]])
    log.write_bytes(data)
    r = ds.mfpsec("/nonexistent.sock", "audit", "verify", str(log))
    assert r.returncode == EX_DATAERR and "modified at record 4" in r.stdout, r.stdout
    # The daemon starts on it, keeps the evidence, and says the chain is broken.
    with ds.running(root) as d:
        r = ds.mfpsec(d.socket_path, "audit", "verify")
        assert r.returncode == EX_DATAERR and "modified at record 4" in r.stdout
        r = ds.mfpsec(d.socket_path, "status")
        assert "audit" in r.stdout and "chain broken at record 4" in r.stdout


@pytest.mark.sfr("FAU_STG.1")
@pytest.mark.spec("L-2")
def test_signed_checkpoints_catch_truncation(short_tmp: Path) -> None:
    root = short_tmp / "d"
    export = short_tmp / "audit.jsonl"
    with ds.running(root) as d:
        k = Connection(d.socket_path)
        for i in range(5):
            k.call(keys.SET_SECRET, keys.SetSecretParams(f"s{i}", "other", bytearray(b"v")))
        identity = k.call(keys.GET_DEVICE_IDENTITY).fingerprint
        assert ds.mfpsec(d.socket_path, "audit", "export", "--to", str(export)).returncode == 0
    lines = export.read_text().splitlines()
    checkpoint = json.loads(lines[-1])["checkpoint"]
    assert checkpoint["signature"] and checkpoint["seq"] == len(lines) - 2  # then its event
    r = ds.mfpsec("/nonexistent.sock", "audit", "verify", str(export))
    assert r.returncode == 0 and f"signed by key {identity}" in r.stdout, r.stdout

    cut = short_tmp / "cut.jsonl"
    cut.write_text("\n".join([*lines[:-3], lines[-1]]) + "\n")  # two records gone
    r = ds.mfpsec("/nonexistent.sock", "audit", "verify", str(cut))
    assert r.returncode == EX_DATAERR and f"truncated at record {len(lines) - 2}" in r.stdout

    forged = dict(checkpoint, signature=checkpoint["signature"][:-4] + "0000")
    bad = short_tmp / "forged.jsonl"
    bad.write_text("\n".join([*lines[:-1], json.dumps({"checkpoint": forged})]) + "\n")
    r = ds.mfpsec("/nonexistent.sock", "audit", "verify", str(bad))
    assert r.returncode == EX_DATAERR and "checkpoint forged" in r.stdout, r.stdout

    # On the device: the stop checkpoint vouches for the last record; cut the file at a
    # frame boundary (no torn tail to notice) and the daemon's verify still says so.
    log = root / "lib" / "audit" / "audit-00000001.log"
    payloads, _, _ = scan(log.read_bytes())
    log.write_bytes(b"".join(frame(p) for p in payloads[:-2]))
    with ds.running(root) as d:
        r = ds.mfpsec(d.socket_path, "status")
        assert f"chain broken at record {len(payloads) - 1}: truncated" in r.stdout, r.stdout
        r = ds.mfpsec(d.socket_path, "audit", "verify")  # new records cannot hide the cut
        assert r.returncode == EX_DATAERR and "differs from the checkpoint" in r.stdout


def _forge(root: Path, *, sign_with: ec.EllipticCurvePrivateKey | None) -> int:
    """What an attacker holding the disk does with the daemon stopped: flip the first
    failed record to a success, re-chain every record after it, and make the newest
    checkpoint vouch for the new chain, signed with a key of their own (or unsigned).
    → the record changed."""
    log = root / "lib" / "audit" / "audit-00000001.log"
    payloads, _, _ = scan(log.read_bytes())
    records = [auditlog.decode(p) for p in payloads]
    target = next(r.seq for r in records if r.outcome is auditlog.Outcome.FAILURE)
    prev, out = auditlog.GENESIS, []
    for record in records:
        changed = msgspec.structs.replace(
            record,
            prev=prev.hex(),
            outcome=auditlog.Outcome.SUCCESS if record.seq == target else record.outcome,
        )
        encoded = auditlog.canonical(changed)
        prev = auditlog.chain_hash(prev, encoded)
        out.append((record.seq, encoded, prev))
    log.write_bytes(b"".join(frame(e) for _, e, _ in out))
    with sqlite3.connect(root / "lib" / "state.sqlite3") as db:
        (seq,) = db.execute("SELECT MAX(seq) FROM audit_checkpoints").fetchone()
        chained = next(h for s, _, h in out if s == seq)
        signature = public = ""
        if sign_with is not None:
            signature = sign_with.sign(
                auditlog.checkpoint_digest(seq, chained), ec.ECDSA(utils.Prehashed(hashes.SHA256()))
            ).hex()
            public = (
                sign_with.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode()
            )
        db.execute(
            "UPDATE audit_checkpoints SET hash = ?, signature = ?, public_key = ? WHERE seq = ?",
            (chained.hex(), signature, public, seq),
        )
    db.close()
    return target


@requires_swtpm
def test_a_rechained_log_with_a_checkpoint_signed_by_another_key_is_tampered(
    short_tmp: Path,
) -> None:
    """Issue 23: a checkpoint was checked against the key it carries, and an unsigned one
    was accepted, so a re-chained log with a re-signed (or unsigned) checkpoint verified
    intact. Checkpoints are now pinned to the device identity."""
    for attacker, problem in (
        (ec.generate_private_key(ec.SECP256R1()), "checkpoint foreign"),
        (None, "checkpoint unsigned"),
    ):
        root = short_tmp / problem.replace(" ", "-")
        with ds.running(root) as d:
            k = Connection(d.socket_path)
            k.call(keys.SET_SECRET, keys.SetSecretParams("s1", "other", bytearray(b"v")))
            r = ds.mfpsec(
                d.socket_path,
                "login",
                "-u",
                "mallory",
                "--password-file",
                "-",
                stdin="Wrong-password-1",
                env={"XDG_RUNTIME_DIR": str(short_tmp)},
            )
            assert r.returncode != 0  # a failed login: the record to flip
            identity = k.call(keys.GET_DEVICE_IDENTITY).fingerprint
            exported = short_tmp / f"{problem}.jsonl"
            assert (
                ds.mfpsec(d.socket_path, "audit", "export", "--to", str(exported)).returncode == 0
            )
        flipped = _forge(root, sign_with=attacker)
        with ds.running(root) as d:
            status = ds.mfpsec(d.socket_path, "status").stdout
            assert problem in status, status
            r = ds.mfpsec(d.socket_path, "audit", "verify")
            assert r.returncode == EX_DATAERR and problem in r.stdout, (flipped, r.stdout)
        # Offline, the export of the genuine log verifies against the device's key and
        # not against another one.
        ok = ds.mfpsec(
            "/nonexistent.sock", "audit", "verify", str(exported), "--identity", identity
        )
        assert ok.returncode == 0 and "this device's identity" in ok.stdout, ok.stdout
        other = ds.mfpsec(
            "/nonexistent.sock", "audit", "verify", str(exported), "--identity", "ab" * 32
        )
        assert other.returncode == EX_DATAERR and "checkpoint foreign" in other.stdout


def test_status_follows_the_latest_verification(short_tmp: Path) -> None:
    """Issue 23: status kept the start-up detail ("N records, chain intact") after a
    verification found the log changed under the running daemon."""
    root = short_tmp / "d"
    with ds.running(root, tpm="none") as d:
        k = Connection(d.socket_path)
        for i in range(5):
            k.call(keys.SET_SECRET, keys.SetSecretParams(f"s{i}", "other", bytearray(b"v")))
        assert "chain intact" in ds.mfpsec(d.socket_path, "status").stdout
        log = root / "lib" / "audit" / "audit-00000001.log"
        payloads, _, _ = scan(log.read_bytes())
        forged = payloads[3].replace(b'"outcome":"success"', b'"outcome":"failure"')
        assert forged != payloads[3]
        with log.open("r+b") as f:  # in place, as the running daemon keeps appending
            f.write(b"".join(frame(p) for p in [*payloads[:3], forged, *payloads[4:]]))
        r = ds.mfpsec(d.socket_path, "audit", "verify")
        assert r.returncode == EX_DATAERR and "modified at record 4" in r.stdout, r.stdout
        status = ds.mfpsec(d.socket_path, "status").stdout
        assert "chain broken at record 4: modified" in status, status
