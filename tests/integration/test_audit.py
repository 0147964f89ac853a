"""The audit log through the running daemon: key operations are recorded with who did
them and how they ended, the chain verifies, and tampering with the device's log file or
with an export is found by `mfpsec audit verify` and located."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mfpsecd.api.auditlog import frame, scan
from mfpsecd.client import Connection, KeysClient
from mfpsecd.errors import EX_DATAERR
from tests.support import daemon as ds
from tests.support.tpm import requires_swtpm

pytestmark = requires_swtpm


def _show(d: ds.DaemonProcess, *args: str) -> list[dict[str, Any]]:
    r = ds.mfpsec(d.socket_path, "audit", "show", "--json", "--limit", "0", *args)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_key_operations_are_audited_and_the_log_verifies(short_tmp: Path) -> None:
    root = short_tmp / "d"
    with ds.running(root) as d:
        k = KeysClient(Connection(d.socket_path))
        k.set_secret("smtp-password", "credential", bytearray(b"pa55word"))
        k.rotate()
        bad = ds.mfpsec(d.socket_path, "secrets", "delete", "nope")
        assert bad.returncode == EX_DATAERR
        weak = ds.mfpsec(d.socket_path, "keys", "backup", "--to", str(short_tmp),
                         "--passphrase-file", "-", stdin="short")
        assert weak.returncode == EX_DATAERR
        entries = _show(d)
        kinds = [(e["type"], e["outcome"]) for e in entries]
        assert kinds[:2] == [("audit.start", "success"), ("keys.unlock", "success")]
        assert ("secret.set", "success") in kinds and ("keys.rotate", "success") in kinds
        (failed_delete,) = [e for e in entries if e["type"] == "secret.delete"]
        assert failed_delete["outcome"] == "failure"
        assert failed_delete["details"] == {"error": "io.mfpsecd.Keys.SecretNotFound"}
        assert failed_delete["subject"]["origin"] == "system"  # root, through the CLI
        assert failed_delete["subject"]["pid"] > 0
        (backup,) = [e for e in entries if e["type"] == "keys.backup"]
        assert (backup["outcome"], backup["details"]["error"]) == (
            "failure", "io.mfpsecd.Keys.PassphraseTooWeak")
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
        ("edited", [*lines[:i], edited, *lines[i + 1:]], f"modified at record {i + 1}"),
        ("deleted", lines[:i] + lines[i + 1:], f"deleted at record {i + 1}"),
        ("reordered", [*lines[:i], lines[i + 1], lines[i], *lines[i + 2:]],
         f"reordered at record {i + 1}"),
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


def test_signed_checkpoints_catch_truncation(short_tmp: Path) -> None:
    root = short_tmp / "d"
    export = short_tmp / "audit.jsonl"
    with ds.running(root) as d:
        k = KeysClient(Connection(d.socket_path))
        for i in range(5):
            k.set_secret(f"s{i}", "other", bytearray(b"v"))
        identity = k.identity().fingerprint
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
