"""Sanitization end to end: the real daemon on a simulated board with image-file disks, the
real `mfpsec` CLI, certificates signed by the device identity key, and power cuts
(SIGKILL) in the middle of a multi-pass wipe."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.wipe.backends.pdf_process import render_pdf_apart
from mfpsecd.wipe.model import certificate as cert
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CE_PW, CONFIG, MALLORY_UID, Cli

SIZE = 8 << 20
BOARD = {"model": "MFP-SIM", "serial": "SIM-0001"}  # what certificates name the controller
# Root without a session sanitizes only in the factory mode (as "factory"): these tests
# are about the sanitization; test_a_logged_in_operator_reauthenticates_and_is_named and
# test_root_without_a_session_needs_the_factory_mode are about the operator.
FACTORY: dict[str, dict[str, Any]] = {**CONFIG, "wipe": {"factory_mode": True}}
# For power cuts: checkpoints every 16 MiB, progress recorded every 20 ms.
POWER_CUTS: dict[str, dict[str, Any]] = {
    **CONFIG,
    "wipe": {"checkpoint_mib": 16, "progress_interval_ms": 20, "factory_mode": True},
}
DISKS = [
    {
        "id": "hdd0",
        "path": "disks/hdd0.img",
        "medium": "hdd",
        "sanitizable": True,
        "size_bytes": SIZE,
    },
    {
        "id": "ssd0",
        "path": "disks/ssd0.img",
        "medium": "ssd",
        "sanitizable": True,
        "size_bytes": SIZE,
    },
    # The system disk: listed (so it is described), never sanitizable.
    {
        "id": "sys0",
        "path": "disks/sys0.img",
        "medium": "ssd",
        "sanitizable": False,
        "size_bytes": SIZE,
    },
]


def _cli(d: ds.DaemonProcess, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    r = ds.mfpsec(d.socket_path, *args, stdin=stdin, timeout=120)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def daemon(short_tmp: Path) -> Iterator[ds.DaemonProcess]:
    with ds.running(
        short_tmp / "d",
        config=FACTORY,
        tpm="none",
        board={"disks": DISKS, "extra": {"board": BOARD}},
    ) as d:
        yield d


def test_cli_targets_start_certificate_and_verification(
    daemon: ds.DaemonProcess, short_tmp: Path
) -> None:
    d = daemon
    image = d.root / "dev" / "disks" / "hdd0.img"
    image.write_bytes(b"old data " * (SIZE // 9) + b"x" * (SIZE % 9))

    rc, out, err = _cli(d, "wipe", "targets", "--json")
    assert rc == 0, err
    targets = {t["id"]: t for t in json.loads(out)}
    assert set(targets) == {"hdd0", "ssd0", "sys0"}
    assert targets["hdd0"]["size_bytes"] == SIZE and targets["hdd0"]["transport"] == "file"
    assert not targets["sys0"]["sanitizable"]
    rc, out, _ = _cli(d, "wipe", "targets")
    assert "not sanitizable" in out.splitlines()[3] and "ready" in out.splitlines()[1]

    # Root without a session: the recovery path, no password asked.
    rc, out, err = _cli(d, "wipe", "start", "--target", "hdd0", "--mode", "5", "--yes")
    assert rc == 0, (out, err)
    assert "completed" in out and "certificate SHA-256" in out
    assert image.read_bytes() == b"\xff" * SIZE  # mode 5 ends with 0xFF
    job = json.loads(_cli(d, "wipe", "status", "--json")[1])[0]
    assert job["state"] == "completed" and job["steps"] == [
        "0x00",
        "0xFF",
        "0x00",
        "0xFF",
        "verify",
    ]
    components = {c["name"]: c for c in json.loads(_cli(d, "status", "--json")[1])["components"]}
    assert components["wipe"]["detail"] == f"3 disk(s); last: {job['id']} completed"

    cert_path, pdf_path = short_tmp / "cert.json", short_tmp / "cert.pdf"
    rc, _, err = _cli(d, "wipe", "cert", job["id"], "--out", str(cert_path), "--pdf", str(pdf_path))
    assert rc == 0, err
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    # Rendered in a child process: reportlab and pillow never load into the daemon.
    maps = Path(f"/proc/{d.pid}/maps").read_text()
    assert "/PIL/" not in maps and "/reportlab/" not in maps
    # What a person reads on the printout: the device by model, serial and identity key,
    # the standards and IEEE 2883's name, the lines to sign, and how to verify.
    text = " ".join(
        subprocess.run(
            ["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    identity = json.loads(_cli(d, "keys", "identity", "--json")[1])["fingerprint"]
    for shown in (
        "NIST SP 800-88 Rev. 2 (September 2025), IEEE 2883-2022",
        "Device model MFP-SIM",
        "Device serial SIM-0001",
        f"Identity key {identity}",
        "IEEE 2883 Clear: overwrite",
        "Result SUCCESS",
        "Operator: name, signature, date",
        "Witness: name, signature, date",
        "mfpsec wipe verify-cert FILE",
    ):
        assert shown in text, shown
    pages = subprocess.run(
        ["pdfinfo", str(pdf_path)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"^Pages:\s+1$", pages, re.M), pages  # one A4 page, signatures too
    document = json.loads(cert_path.read_text())
    body = document["certificate"]
    assert body["result"] == "success" and body["media"]["id"] == "hdd0"
    # A renderer gone wrong costs the call, not the daemon's memory: its output is read
    # as it comes and stopped past the limit; a crash is reported with its last words.
    doc = cert.decode_document(cert_path.read_bytes())
    flood = (sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'%PDF-' * (2 << 20))")
    crash = (sys.executable, "-c", "import sys; sys.exit('renderer: no fonts')")
    for renderer, said in ((flood, "wrote more than 4 MiB"), (crash, "renderer: no fonts")):
        with pytest.raises(MfpsecError, match=said):
            asyncio.run(render_pdf_apart(doc, renderer=renderer))
    assert body["method"]["passes"] == ["0x00", "0xFF", "0x00", "0xFF"]
    # The factory mode: root without a session, named as the factory.
    assert body["operator"] == {"user": "factory", "role": "factory", "origin": "system"}
    assert body["verification"]["result"] == "passed"
    rc, text, _ = _cli(d, "wipe", "cert", job["id"], "--text")
    assert rc == 0 and "SANITIZATION CERTIFICATE" in text and job["certificate_sha256"] in text

    rc, out, err = _cli(d, "wipe", "verify-cert", str(cert_path))
    assert rc == 0 and "valid signature by this device" in out, err
    # One changed field (the result of a failed run passed off as a success, say).
    body["media"]["serial"] = "SOMEONE-ELSES"
    forged = short_tmp / "forged.json"
    forged.write_text(json.dumps(document))
    rc, _, err = _cli(d, "wipe", "verify-cert", str(forged))
    assert rc == 65 and "io.mfpsecd.Wipe.CertificateInvalid" in err

    # Refusals (audited): the system disk, an unknown id.
    rc, _, err = _cli(d, "wipe", "start", "--target", "sys0", "--mode", "1", "--yes")
    assert rc != 0 and "TargetRefused" in err and "not listed as sanitizable" in err
    rc, _, err = _cli(d, "wipe", "start", "--target", "nvme9", "--mode", "1", "--yes")
    assert rc != 0 and "TargetUnknown" in err
    assert image.read_bytes() == b"\xff" * SIZE

    # The audit log has the start, each pass, the read-back and the certificate digest.
    rc, out, _ = _cli(d, "audit", "show", "--type", "sanitize", "--json")
    records = json.loads(out)
    mine = [r for r in records if r["object"] == job["id"]]
    assert [r["details"]["phase"] for r in mine] == [
        "start",
        "pass",
        "pass",
        "pass",
        "pass",
        "verify",
        "result",
    ]
    assert mine[-1]["details"]["certificate_sha256"] == job["certificate_sha256"]
    refused = [r for r in records if r["outcome"] == "failure"]
    assert [r["object"] for r in refused] == ["sys0", "nvme9"]


def test_cli_purge_plan_confirmation_and_certificate(daemon: ds.DaemonProcess) -> None:
    """An image file has no purge command: the plan says so, a Purge that would fall
    short needs a service engineer's confirmation (root's recovery path cannot give
    it), and a Clear runs the engine's overwrite with the plan in its certificate."""
    d = daemon
    rc, out, err = _cli(d, "wipe", "plan", "ssd0")
    assert rc == 0, err
    assert out.startswith("ssd0 (file): purge by overwrite, reaches clear - no purge method")
    assert "needs a service engineer's confirmation" in out
    assert "not possible: nvme-format-erase: not an NVMe device" in out
    plan = json.loads(_cli(d, "wipe", "plan", "ssd0", "--json")[1])
    assert plan["method"] == "overwrite" and plan["needs_confirmation"]
    rc, _, err = _cli(d, "wipe", "plan", "ssd0", "--method", "no-such-method")
    assert rc == 65 and "InvalidParameter" in err

    rc, _, err = _cli(d, "wipe", "purge", "--target", "ssd0", "--confirm", "--yes")
    assert rc == 77 and "io.mfpsecd.Wipe.ConfirmationRequired" in err, err
    rc, out, err = _cli(
        d, "wipe", "purge", "--target", "ssd0", "--level", "clear", "--yes", "--json"
    )
    assert rc == 0, err
    job = json.loads(out.splitlines()[-1])
    assert (job["state"], job["method"], job["level"]) == ("completed", "overwrite", "clear")
    body = json.loads(_cli(d, "wipe", "cert", job["id"])[1])["certificate"]
    assert body["purge"]["requested"] == "clear" and body["purge"]["shortfall"] == ""
    assert body["purge"]["evidence"]["transport"] == "file"
    rc, text, _ = _cli(d, "wipe", "cert", job["id"], "--text")
    assert "Purge plan" in text and "Not possible     nvme-sanitize-crypto" in text


def test_status_of_a_cancelled_job_exits_with_its_error(short_tmp: Path) -> None:
    """README promises a non-zero status for a sanitization that did not complete: so
    does `wipe status JOB`, with or without --json, and not only with --follow."""
    big = {
        "id": "hdd1",
        "path": "disks/hdd1.img",
        "medium": "hdd",
        "sanitizable": True,
        "size_bytes": 2 << 30,
    }  # sparse; eight passes of it take far longer than a cancel
    with ds.running(
        short_tmp / "d", config=FACTORY, tpm="none", board={"disks": [*DISKS, big]}
    ) as d:
        rc, out, err = _cli(
            d, "wipe", "start", "--target", "hdd1", "--mode", "8", "--yes", "--no-wait", "--json"
        )
        assert rc == 0, err
        job_id = json.loads(out)["id"]
        rc, out, err = _cli(d, "wipe", "status", job_id)
        assert rc == 0 and "running" in out, err  # a running job is no failure
        rc, out, err = _cli(d, "wipe", "cancel", job_id)
        assert rc == 0 and "cancelled" in out, err
        cancelled = ErrorCode.WIPE_CANCELLED.exit_status
        rc, out, _ = _cli(d, "wipe", "status", job_id)
        assert (rc, "cancelled" in out) == (cancelled, True)
        rc, out, _ = _cli(d, "wipe", "status", job_id, "--json")
        assert (rc, json.loads(out)["state"]) == (cancelled, "cancelled")
        # The list of every job is not about one job: it answers 0.
        assert _cli(d, "wipe", "status")[0] == 0


@pytest.mark.sfr("FAU_GEN.2", "FIA_USB.1")
@pytest.mark.spec("A-10", "A-7", "L-1")
@pytest.mark.root
def test_a_logged_in_operator_reauthenticates_and_is_named(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    with ds.running(short_tmp / "d", config=CONFIG, tpm="none", board={"disks": DISKS}) as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        cli.ok(ALICE_UID, "users", "init", "alice", "--password-file", "-", stdin=ADMIN_PW)
        # Without a session a maintenance peer may not even list the disks.
        assert "AuthenticationRequired" in cli.fails(ALICE_UID, "wipe", "targets")
        cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(
            ALICE_UID,
            "users",
            "add",
            "bob",
            "--role",
            "user",
            "--permanent",
            "--password-file",
            "-",
            stdin="Plain-user-pass-2026",
        )

        # Root without a session (and no factory mode): a certificate names a person.
        for args in (
            ("start", "--target", "ssd0", "--mode", "1"),
            ("purge", "--target", "ssd0", "--level", "clear"),
        ):
            rc, _, err = _cli(d, "wipe", *args, "--yes")
            assert rc == ErrorCode.AUTHENTICATION_REQUIRED.exit_status, err
            assert "names the person who ran it: log in first" in err
        err = cli.fails(
            ALICE_UID,
            "wipe",
            "start",
            "--target",
            "ssd0",
            "--mode",
            "8",
            "--yes",
            "--password-file",
            "-",
            stdin="not-her-password",
        )
        assert "AuthenticationFailed" in err
        assert json.loads(cli.ok(ALICE_UID, "wipe", "status", "--json")) == []
        out = cli.ok(
            ALICE_UID,
            "wipe",
            "start",
            "--target",
            "ssd0",
            "--mode",
            "8",
            "--yes",
            "--password-file",
            "-",
            stdin=ADMIN_PW,
        )
        assert "completed" in out
        job = json.loads(cli.ok(ALICE_UID, "wipe", "status", "--json"))[0]
        # Flash: one 0x00 pass whatever the mode asked (W-3), then the read-back.
        assert job["steps"] == ["0x00", "verify"]
        body = json.loads(cli.ok(ALICE_UID, "wipe", "cert", job["id"]))["certificate"]
        assert body["operator"] == {"user": "alice", "role": "administrator", "origin": "cli"}
        assert body["method"]["mode"] == 8 and "flash" in body["method"]["reason"]

        # A purge that falls short of its level: the administrator may not confirm it,
        # the service engineer may, with their password again.
        cli.add_service_engineer(ALICE_UID)
        err = cli.fails(
            ALICE_UID,
            "wipe",
            "purge",
            "--target",
            "ssd0",
            "--confirm",
            "--yes",
            "--password-file",
            "-",
            stdin=ADMIN_PW,
        )
        assert "ConfirmationRequired" in err and "no purge method" in err
        cli.ok(MALLORY_UID, "login", "-u", "tech1", "--password-file", "-", stdin=CE_PW)
        out = cli.ok(
            MALLORY_UID,
            "wipe",
            "purge",
            "--target",
            "ssd0",
            "--confirm",
            "--yes",
            "--password-file",
            "-",
            stdin=CE_PW,
        )
        assert "completed" in out and "purge by overwrite" in out
        job = json.loads(cli.ok(MALLORY_UID, "wipe", "status", "--json"))[-1]
        body = json.loads(cli.ok(MALLORY_UID, "wipe", "cert", job["id"]))["certificate"]
        assert body["purge"]["confirmed_by"] == "tech1"
        assert body["operator"] == {"user": "tech1", "role": "service", "origin": "cli"}
        cli.ok(MALLORY_UID, "logout")

        # A plain user may not sanitize, password or not.
        cli.ok(
            MALLORY_UID, "login", "-u", "bob", "--password-file", "-", stdin="Plain-user-pass-2026"
        )
        err = cli.fails(
            MALLORY_UID,
            "wipe",
            "start",
            "--target",
            "hdd0",
            "--mode",
            "1",
            "--yes",
            "--password-file",
            "-",
            stdin="Plain-user-pass-2026",
        )
        assert "PermissionDenied" in err
        records = json.loads(cli.ok(ALICE_UID, "audit", "show", "--limit", "0", "--json"))
        failures = [r for r in records if r["type"] == "auth.login" and r["outcome"] == "failure"]
        assert failures and failures[-1]["details"]["method"] == "reauthentication"


# ---------------------------------------------------------------- power cuts

KILLS = 20
BIG = 1 << 30


def _progress(db: Path) -> tuple[str, int, int]:
    """The job's durable record, read as the daemon left it (WAL: a concurrent reader)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT state, step, offset FROM wipe_jobs").fetchone()
    conn.close()
    return (str(row[0]), int(row[1]), int(row[2])) if row else ("", 0, 0)


def test_sigkill_twenty_times_during_a_1gib_mode3_wipe_resumes_to_a_verified_result(
    short_tmp: Path,
) -> None:
    """Mode 3 (0x00, 0xFF, random, read-back) over 1 GiB; the daemon is SIGKILLed 20 times
    at random moments between checkpoints. Each start resumes from the last recorded
    checkpoint; the result is the exact AES-CTR stream of the random pass (checked here
    independently), and the certificate exists only at the end."""
    root = short_tmp / "d"
    disks = [
        {
            "id": "hdd0",
            "path": "disks/hdd0.img",
            "medium": "hdd",
            "sanitizable": True,
            "size_bytes": BIG,
        }
    ]
    config = POWER_CUTS
    db = root / "lib" / "state.sqlite3"
    rng = random.Random(20261122)
    d = ds.start(root, config=config, tpm="none", board={"disks": disks})
    try:
        rc, out, err = _cli(
            d, "wipe", "start", "--target", "hdd0", "--mode", "3", "--yes", "--no-wait", "--json"
        )
        assert rc == 0, err
        job_id = json.loads(out)["id"]
        steps, work = 4, 4 * BIG
        kills: list[tuple[int, int]] = []
        while len(kills) < KILLS:
            state, step, offset = _progress(db)
            assert state == "running", (state, kills)
            done = step * BIG + offset
            # Kill once the recorded progress has moved on by a share of what is left, so
            # every start advances and the 20 kills all land before the end.
            target = done + (work - done) // (KILLS - len(kills) + 3)
            deadline = time.monotonic() + 60
            while True:
                state, step, offset = _progress(db)
                if state != "running" or step * BIG + offset >= target:
                    break
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.005)
            assert state == "running", f"finished after only {len(kills)} kills"
            time.sleep(rng.uniform(0, 0.05))  # land between two checkpoints
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            d.close_notify()
            kills.append((step, offset))
            # No certificate for a job that has not finished, whatever was interrupted.
            with sqlite3.connect(db) as conn:
                assert conn.execute("SELECT certificate FROM wipe_jobs").fetchone()[0] == ""
            conn.close()
            d = ds.start(root, config=config, tpm="none", board={"disks": disks})
        assert len({s for s, _ in kills}) >= 3, kills  # kills in several passes

        rc, out, err = _cli(d, "wipe", "status", job_id, "--follow", "--json")
        assert rc == 0, err
        final = json.loads(out.splitlines()[-1])
        assert final["state"] == "completed", final
        assert final["resumed"] == KILLS
        assert final["steps"] == ["0x00", "0xFF", "random", "verify"]

        # Independently: the image holds the random pass's AES-256-CTR stream, counter =
        # offset / 16, with the key the job recorded.
        with sqlite3.connect(db) as conn:
            plan = json.loads(conn.execute("SELECT plan FROM wipe_jobs").fetchone()[0])
        conn.close()
        key = bytes.fromhex(plan["steps"][2]["key"])
        stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        with (root / "dev" / "disks" / "hdd0.img").open("rb") as f:
            for _ in range(BIG // (16 << 20)):
                chunk = f.read(16 << 20)
                assert chunk == stream.update(bytes(len(chunk)))
        assert steps == len(final["steps"])

        cert_path = short_tmp / "cert.json"
        assert _cli(d, "wipe", "cert", job_id, "--out", str(cert_path))[0] == 0
        body = json.loads(cert_path.read_text())["certificate"]
        assert body["resumed"] == KILLS and body["result"] == "success"
        rc, out, _ = _cli(d, "wipe", "verify-cert", str(cert_path))
        assert rc == 0 and "this device" in out
        rc, out, _ = _cli(d, "audit", "show", "--type", "sanitize", "--json")
        results = [r for r in json.loads(out) if r["details"].get("phase") == "result"]
        assert len(results) == 1 and results[0]["details"]["result"] == "success"
    finally:
        if d.proc.poll() is None:
            d.stop()
        d.close_notify()


def test_a_medium_swapped_during_a_power_cut_gets_no_certificate(short_tmp: Path) -> None:
    """As an attacker would try it: mode 1 on hdd0, SIGKILL at about 80 %, the image
    replaced by another of the same size, restart. The job fails (MediumChanged), and
    `wipe status` exits with that error; nothing certifies hdd0."""
    root = short_tmp / "d"
    size = 256 << 20
    disks = [
        {
            "id": "hdd0",
            "path": "disks/hdd0.img",
            "medium": "hdd",
            "sanitizable": True,
            "size_bytes": size,
        }
    ]
    config = POWER_CUTS
    db = root / "lib" / "state.sqlite3"
    d = ds.start(root, config=config, tpm="none", board={"disks": disks})
    try:
        rc, out, err = _cli(
            d, "wipe", "start", "--target", "hdd0", "--mode", "1", "--yes", "--no-wait", "--json"
        )
        assert rc == 0, err
        job_id = json.loads(out)["id"]
        deadline = time.monotonic() + 120
        while _progress(db)[2] < size * 8 // 10:
            assert _progress(db)[0] == "running" and time.monotonic() < deadline
            time.sleep(0.002)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.close_notify()
        image = root / "dev" / "disks" / "hdd0.img"
        image.unlink()
        with image.open("wb") as f:  # a fresh medium of the same size
            f.truncate(size)
        d = ds.start(root, config=config, tpm="none", board={"disks": disks})
        rc, out, _ = _cli(d, "wipe", "status", job_id, "--follow", "--json")
        final = json.loads(out.splitlines()[-1])
        assert final["state"] == "failed", final
        assert final["error"].startswith("io.mfpsecd.Wipe.MediumChanged")
        # The same, typed: a client reads the code and its parameters, not the text.
        assert final["error_code"] == ErrorCode.WIPE_MEDIUM_CHANGED.wire_name
        assert final["error_params"]["target"] == "hdd0"
        assert "is not there" in final["error_params"]["reason"]
        assert rc == ErrorCode.WIPE_MEDIUM_CHANGED.exit_status
        rc, _, err = _cli(d, "wipe", "status", job_id)
        assert rc == ErrorCode.WIPE_MEDIUM_CHANGED.exit_status
        # Its certificate says FAILED, and why: nothing certifies hdd0 as sanitized.
        rc, out, _ = _cli(d, "wipe", "cert", job_id)
        body = json.loads(out)["certificate"]
        assert (body["result"], body["verification"]["result"]) == ("failed", "not run")
        assert body["error"].startswith("io.mfpsecd.Wipe.MediumChanged")
        assert rc == ErrorCode.WIPE_MEDIUM_CHANGED.exit_status  # a read of a failed job
    finally:
        if d.proc.poll() is None:
            d.stop()
        d.close_notify()


def _sanitize(d: ds.DaemonProcess, out: Path) -> str:
    rc, stdout, err = _cli(d, "wipe", "start", "--target", "hdd0", "--mode", "1", "--yes", "--json")
    assert rc == 0, err
    job_id = str(json.loads(stdout.splitlines()[-1])["id"])
    assert (
        _cli(
            d, "wipe", "cert", job_id, "--out", str(out), "--openssl", str(out.parent / "openssl")
        )[0]
        == 0
    )
    return job_id


def _openssl_verifies(pem: Path, sig: Path, data: Path) -> bool:
    r = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(pem), "-signature", str(sig), str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    return r.returncode == 0 and "Verified OK" in r.stdout


def test_certificates_survive_a_tpm_replacement_and_foreign_ones_are_refused(
    short_tmp: Path,
) -> None:
    """An auditor's view: the certificates this device issued before its TPM was replaced
    still verify (under its earlier identity, which its identity history proves), one
    re-signed with another key does not (CertificateForeign, non-zero), and all of it
    checks offline with openssl alone."""
    root, usb = short_tmp / "d", short_tmp / "usb"
    usb.mkdir()
    before, after = short_tmp / "before" / "cert.json", short_tmp / "after" / "cert.json"
    for p in (before, after):
        p.parent.mkdir()
    with ds.running(root, config=FACTORY, board={"disks": DISKS}) as d:
        old_job = _sanitize(d, before)
        old_fp = json.loads(_cli(d, "keys", "identity", "--json")[1])["fingerprint"]
        r = ds.mfpsec(
            d.socket_path,
            "keys",
            "backup",
            "--to",
            str(usb),
            "--passphrase-file",
            "-",
            stdin="Service-engineer-passphrase-1",
        )
        assert r.returncode == 0, r.stderr
    (backup,) = usb.glob("*.mfpkb")
    shutil.rmtree(root / "lib" / "tpm")  # a replacement TPM
    with ds.running(root, config=FACTORY, board={"disks": DISKS}) as d:
        rc, _, err = _cli(d, "wipe", "verify-cert", str(before))
        assert rc == ErrorCode.KEYS_UNAVAILABLE.exit_status, err  # locked: cannot tell yet
        r = ds.mfpsec(
            d.socket_path,
            "keys",
            "restore",
            "--from",
            str(backup),
            "--passphrase-file",
            "-",
            stdin="Service-engineer-passphrase-1",
        )
        assert r.returncode == 0, r.stderr
        new_fp = json.loads(_cli(d, "keys", "identity", "--json")[1])["fingerprint"]
        assert new_fp != old_fp
        _sanitize(d, after)

        rc, out, err = _cli(d, "wipe", "verify-cert", str(after))
        assert rc == 0 and f"this device (identity {new_fp[:16]})" in out, err
        rc, out, err = _cli(d, "wipe", "verify-cert", str(before))
        assert rc == 0, err
        assert f"this device, under an earlier identity {old_fp[:16]} (replaced 20" in out
        verdict = json.loads(_cli(d, "wipe", "verify-cert", str(before), "--json")[1])
        assert verdict["identity_fingerprint"] == old_fp and verdict["id"] == old_job

        # The restore is in the audit log with both identities.
        rc, out, _ = _cli(d, "audit", "show", "--type", "keys.restore", "--json")
        (restored,) = [r for r in json.loads(out) if r["outcome"] == "success"]
        assert (restored["details"]["previous_identity"], restored["details"]["identity"]) == (
            old_fp,
            new_fp,
        )

        # Edited and re-signed with another key: an intact signature, not this device's.
        doc = json.loads(before.read_text())
        doc["certificate"]["media"]["serial"] = "SOMEONE-ELSES"
        other = ec.generate_private_key(ec.SECP256R1())
        body = json.dumps(
            doc["certificate"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        doc["signature"] = {
            "alg": "ecdsa-p256-sha256",
            "value": other.sign(body, ec.ECDSA(hashes.SHA256())).hex(),
            "public_key": other.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
        }
        forged = short_tmp / "forged.json"
        forged.write_text(json.dumps(doc))
        rc, out, err = _cli(d, "wipe", "verify-cert", str(forged))
        assert rc == ErrorCode.WIPE_CERTIFICATE_FOREIGN.exit_status != 0
        assert "io.mfpsecd.Wipe.CertificateForeign" in err and "valid" not in out

        # Offline, with openssl alone: the history from the current key back, then each
        # certificate under the key that signed it.
        history = short_tmp / "history"
        assert _cli(d, "keys", "identity-history", "--out", str(history))[0] == 0
    link = json.loads((history / "link-1.json").read_text())
    assert (link["previous_fingerprint"], link["fingerprint"]) == (old_fp, new_fp)
    assert _openssl_verifies(
        history / "identity-0.pem", history / "link-1.sig", history / "link-1.json"
    )
    assert not _openssl_verifies(
        history / "identity-1.pem", history / "link-1.sig", history / "link-1.json"
    )
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(history / "identity-1.pem"), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    assert hashlib.sha256(der).hexdigest() == old_fp
    for cert_json, pem in ((before, "identity-1.pem"), (after, "identity-0.pem")):
        job = json.loads(cert_json.read_text())["certificate"]["id"]
        files = cert_json.parent / "openssl"
        assert _openssl_verifies(history / pem, files / f"{job}.sig", files / f"{job}.body.json")
        signed = json.loads((files / f"{job}.body.json").read_text())
        assert signed == json.loads(cert_json.read_text())["certificate"]
