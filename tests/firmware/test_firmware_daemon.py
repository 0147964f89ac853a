"""Firmware end to end: the boot unit's own command in normal and enhanced security mode
(exit statuses, the boot record, the alert), the daemon refusing to run on unverified
firmware in enhanced mode, and `mfpsec fw` against the daemon: status, verify, an update
by the service engineer, the administrator's lock that nobody else lifts, and the switch
to the new slot at the next boot with the anti-rollback counter raised (F-1..F-4, B-1)."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.base.errors import EX_CONFIG, EX_DATAERR, EX_NOPERM, EX_TEMPFAIL, EX_UNAVAILABLE
from mfpsecd.firmware import archive as fw_archive
from mfpsecd.firmware.backends.native_hasher import NativeTreeHasher
from mfpsecd.firmware.bundle import verify_bundle, verify_header
from mfpsecd.firmware.model.signature import ClockCheck
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CE_PW, CONFIG, MALLORY_UID, Cli
from tests.support.firmware_bundle import MODEL, make_bundle, make_tree, sign_tree
from tests.support.firmware_pki import (
    NOW,
    ROOT,
    ROOT_KEY,
    SIGNER,
    SIGNER_KEY,
    make_crl,
    pem_of,
)
from tests.support.pki import make_pki
from tests.support.rsyslog import free_port
from tests.support.smtp_sink import starttls_sink
from tests.support.tpm import requires_swtpm

UNIT = ds.ROOT / "systemd" / "mfpsecd-fwverify.service"


def _exec_start(unit: Path) -> list[str]:
    lines = [x for x in unit.read_text().splitlines() if x.startswith("ExecStart=")]
    assert len(lines) == 1
    return shlex.split(lines[0].removeprefix("ExecStart="))


def _board(root: Path) -> dict[str, Any]:
    (root / "fw-root.pem").write_bytes(pem_of(ROOT))
    slot = root / "lib" / "firmware" / "a"
    make_tree(slot / "tree")
    sign_tree(slot, epoch=3)
    return {"extra": {"firmware": {"model": MODEL, "roots": [str(root / "fw-root.pem")]}}}


def _write_config(
    root: Path, mode: str, board: dict[str, Any], **sections: Any
) -> tuple[Path, Path]:
    board_path = ds.write_board(root, **board)
    config = root / "mfpsecd.toml"
    config.write_text(
        ds.toml_doc({"daemon": {"board_dir": str(root)}, "security": {"mode": mode}, **sections})
    )
    return config, board_path


def _boot_unit(config: Path, board: Path) -> subprocess.CompletedProcess[str]:
    """The unit's ExecStart, run as the unit would (with this test's files)."""
    argv = _exec_start(UNIT)
    assert argv[0] == "/usr/bin/mfpsecd" and argv[1:3] == ["fw-verify", "--boot"]
    args = argv[1:]
    args[args.index("--config") + 1] = str(config)
    return subprocess.run(
        [*ds.MFPSECD, *args, "--board", str(board)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ds.ROOT,
    )


def _record(root: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((root / "run" / "firmware-boot.json").read_text())
    return record


def test_the_unit_orders_itself_before_the_services_and_isolates_on_failure() -> None:
    text = UNIT.read_text()
    for line in (
        "DefaultDependencies=no",
        "Before=basic.target mfpsecd.service",
        "OnFailure=mfpsecd-firmware-failed.target",
        "OnFailureJobMode=isolate",
        "Type=oneshot",
        "RemainAfterExit=yes",
    ):
        assert line in text
    daemon_unit = (ds.ROOT / "systemd" / "mfpsecd.service").read_text()
    assert "Requires=mfpsecd.socket mfpsecd-fd.socket mfpsecd-fwverify.service" in daemon_unit
    target = (ds.ROOT / "systemd" / "mfpsecd-firmware-failed.target").read_text()
    assert "AllowIsolate=yes" in target and "mfpsecd-firmware-alert.service" in target
    # The safe state keeps the network, behind the IP filter, so the alert can go out.
    assert "Requires=sysinit.target mfpsecd-netfilter.service" in target
    assert "network-online.target" in target
    alert = (ds.ROOT / "systemd" / "mfpsecd-firmware-alert.service").read_text()
    for line in (
        "After=sysinit.target mfpsecd-netfilter.service network-online.target",
        "Restart=on-failure",
        "StateDirectory=mfpsecd",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ):
        assert line in alert
    assert "PrivateNetwork" not in alert
    assert _exec_start(ds.ROOT / "systemd" / "mfpsecd-firmware-alert.service")[1:4] == [
        "fw-alert",
        "--retry-for",
        "300",
    ]


@pytest.mark.sfr("FPT_TUD_EXT.1")
@pytest.mark.spec("F-1", "F-4", "F-5")
@requires_swtpm
def test_boot_unit_in_normal_and_enhanced_mode(short_tmp: Path) -> None:
    root = short_tmp / "d"
    root.mkdir()
    board = _board(root)
    config, board_path = _write_config(root, "enhanced", board)
    r = _boot_unit(config, board_path)
    assert r.returncode == 0, r.stderr
    rec = _record(root)
    assert (rec["result"], rec["slot"], rec["epoch"]) == ("verified", "a", 3)
    assert len(rec["pcr_value"]) == 64 and "firmware verified: slot a" in r.stdout

    (root / "lib" / "firmware" / "a" / "tree" / "bin" / "f0").write_bytes(b"implant")
    r = _boot_unit(config, board_path)  # enhanced: the boot stops
    assert r.returncode == EX_DATAERR, r.stderr
    assert "FIRMWARE VERIFICATION FAILED (enhanced mode)" in r.stderr
    rec = _record(root)
    assert rec["result"] == "failed" and rec["error"] == "io.mfpsecd.Firmware.TreeMismatch"
    # The daemon in enhanced mode says why it does not start: the boot check failed.
    d = ds.start(root, board=board, config={"security": {"mode": "enhanced"}}, wait_ready=False)
    assert d.proc.wait(60) == EX_UNAVAILABLE
    d.close_notify()
    message = d.log()
    assert (
        "enhanced security mode: the boot verification failed: slot a: "
        "io.mfpsecd.Firmware.TreeMismatch" in message
    ), message
    assert "no firmware slots configured" not in message
    alert = subprocess.run(
        [*ds.MFPSECD, "fw-alert", "--config", str(config), "--board", str(board_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ds.ROOT,
    )
    assert alert.returncode == 0 and "The device does not start" in alert.stdout
    # The daemon does not run on firmware that failed (or skipped) the boot check.
    d = ds.start(
        root / "e", board=board, config={"security": {"mode": "enhanced"}}, wait_ready=False
    )
    assert d.proc.wait(60) == EX_UNAVAILABLE  # no boot record under its own run dir
    d.close_notify()

    config, board_path = _write_config(root, "normal", board)
    r = _boot_unit(config, board_path)  # normal: alert, and carry on
    assert r.returncode == 0 and "FIRMWARE VERIFICATION FAILED (normal mode)" in r.stderr
    assert _record(root)["result"] == "failed"


def _fw_alert(config: Path, board: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ds.MFPSECD, "fw-alert", "--config", str(config), "--board", str(board), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ds.ROOT,
    )


def _until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@requires_swtpm
def test_a_failed_boot_check_is_alerted_once_even_before_the_network(short_tmp: Path) -> None:
    """The boot unit runs before the network: the alert for a failed verification waits
    in the outbox. In enhanced mode the safe state's fw-alert sends it (retrying while the
    mail server is unreachable); in normal mode the daemon sends it when it starts. Each
    failed boot is mailed once, however often either runs again."""
    root = short_tmp / "d"
    root.mkdir()
    board = _board(root)
    port = free_port()
    ca = make_pki(short_tmp / "sink" / "pki").ca  # the sink makes its PKI again here
    notify = {
        "notify": {
            "mail": {
                "host": "localhost",
                "port": port,
                "sender": "mfp@example.net",
                "recipients": ["admin@example.net"],
                "ca_file": str(ca),
            }
        }
    }
    config, board_path = _write_config(root, "enhanced", board, **notify)
    (root / "lib" / "firmware" / "a" / "tree" / "bin" / "f0").write_bytes(b"implant")
    assert _boot_unit(config, board_path).returncode == EX_DATAERR

    down = _fw_alert(config, board_path, "--retry-for", "0")  # no mail server yet
    assert down.returncode == EX_TEMPFAIL, down.stdout + down.stderr
    assert "FIRMWARE VERIFICATION FAILED (enhanced mode)" in down.stdout
    assert "alert 'firmware' (audit record" in down.stdout
    assert "waiting: mail: SMTPConnectError" in down.stdout
    with starttls_sink(short_tmp / "sink", port) as sink:
        up = _fw_alert(config, board_path)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "alerts: 1 mail(s) and 0 trap(s) sent" in up.stdout
        assert len(sink.messages) == 1
        mail = sink.messages[0]
        assert "firmware: firmware.verify failure" in mail
        assert "io.mfpsecd.Firmware.TreeMismatch" in mail, mail
        again = _fw_alert(config, board_path)  # the unit restarted: nothing twice
        assert again.returncode == 0 and "alerts: 0 mail(s)" in again.stdout
        assert len(sink.messages) == 1

        config, board_path = _write_config(root, "normal", board, **notify)
        assert _boot_unit(config, board_path).returncode == 0  # normal: boots on
        daemon_config = {"security": {"mode": "normal"}, **notify}
        with ds.running(root, board=board, config=daemon_config):
            _until(lambda: len(sink.messages) == 2, "the daemon did not send the alert")
        assert "firmware: firmware.verify failure" in sink.messages[1]
        with ds.running(root, board=board, config=daemon_config):
            time.sleep(1)
        assert len(sink.messages) == 2


@requires_swtpm
def test_a_revocation_list_retires_the_signing_key_at_boot(short_tmp: Path) -> None:
    """The trust store's CRL (the board profile's firmware.crls) revokes the vendor's
    signing certificate: the installed firmware no longer verifies at boot, and a CRL in
    a root's name that the root did not sign is a configuration error."""
    root = short_tmp / "d"
    root.mkdir()
    board = _board(root)
    crl = root / "fw-root.crl"
    crl.write_bytes(
        make_crl("MFP firmware root", ROOT_KEY, SIGNER).public_bytes(serialization.Encoding.PEM)
    )
    board["extra"]["firmware"]["crls"] = [str(crl)]
    config, board_path = _write_config(root, "enhanced", board)
    r = _boot_unit(config, board_path)
    assert r.returncode == EX_DATAERR, r.stderr
    assert "is revoked by CN=MFP firmware root" in r.stderr
    forged = ec.generate_private_key(ec.SECP384R1())
    crl.write_bytes(
        make_crl("MFP firmware root", forged, SIGNER).public_bytes(serialization.Encoding.DER)
    )
    r = _boot_unit(config, board_path)
    assert r.returncode == EX_CONFIG, r.stderr
    assert "firmware.crls[0]" in r.stderr and "not signed by the root it names" in r.stderr
    crl.write_bytes(
        make_crl("MFP firmware root", ROOT_KEY).public_bytes(serialization.Encoding.DER)
    )  # nothing revoked: boots
    assert _boot_unit(config, board_path).returncode == 0


@pytest.mark.sfr("FMT_MOF.1")
@pytest.mark.spec("A-10", "F-3", "N-1")
@pytest.mark.root
@requires_swtpm
def test_update_lock_and_switch_through_the_cli(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    root = short_tmp / "d"
    root.mkdir()
    board = _board(root)
    config, board_path = _write_config(root, "normal", board)
    assert _boot_unit(config, board_path).returncode == 0
    src = short_tmp / "src"
    src.mkdir(mode=0o755)
    archive = make_bundle(src, "v4", epoch=4)
    archive.chmod(0o644)
    cfg = {**CONFIG, "security": {"mode": "normal"}}
    with ds.running(root, config=cfg, board=board) as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        status = json.loads(cli.ok(0, "fw", "status", "--json"))
        assert (status["active"], status["boot"]["result"], status["counter"]) == (
            "a",
            "verified",
            3,
        )
        assert "mfp-controller 2.3.0, epoch 3" in cli.ok(0, "fw", "verify")
        health = {c["name"]: c for c in json.loads(cli.ok(0, "status", "--json"))["components"]}
        assert health["firmware"]["state"] == "ok"
        assert (
            "slot a, version 2.3.0, epoch 3, verified at boot (normal mode), measured into "
            "PCR 14" in health["firmware"]["detail"]
        )
        assert "epoch 4" in cli.ok(0, "fw", "verify", str(archive))
        # The keys open only on the firmware measured at this boot.
        measured = _record(root)["pcr_value"]
        keys = json.loads(cli.ok(0, "keys", "status", "--json"))
        assert (keys["state"], keys["bound_to"]) == ("ready", f"PCR 14 = {measured[:16]}…")

        cli.ok(0, "users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(0, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.add_service_engineer(0)
        cli.ok(0, "logout")
        cli.ok(ALICE_UID, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(MALLORY_UID, "login", "-u", "tech1", "--password-file", "-", stdin=CE_PW)

        # F-3: the administrator prohibits rewriting; nobody else lifts it.
        assert "prohibited by admin" in cli.ok(
            ALICE_UID, "fw", "lock", "--password-file", "-", stdin=ADMIN_PW
        )
        r = cli(MALLORY_UID, "fw", "update", str(archive), "--password-file", "-", stdin=CE_PW)
        assert r.returncode == EX_NOPERM and "RewriteProhibited" in r.stderr
        assert "PermissionDenied" in cli.fails(
            MALLORY_UID, "fw", "unlock", "--password-file", "-", stdin=CE_PW
        )
        r = cli(0, "fw", "unlock")  # root without a session is no administrator
        assert r.returncode == EX_NOPERM and "administrator" in r.stderr
        cli.ok(ALICE_UID, "fw", "unlock", "--password-file", "-", stdin=ADMIN_PW)

        out = cli.ok(MALLORY_UID, "fw", "update", str(archive), "--password-file", "-", stdin=CE_PW)
        assert "written to slot b" in out and "reboot to switch" in out
        status = json.loads(cli.ok(0, "fw", "status", "--json"))
        assert (status["pending"], status["tries"], status["counter"]) == ("b", 3, 3)
        assert "slot b: trial, 3 boot attempt(s) left" in cli.ok(0, "fw", "status")

    # The next power-on: the boot unit tries slot b, the daemon commits it.
    r = _boot_unit(config, board_path)
    assert r.returncode == 0 and "slot b (trial)" in r.stdout, r.stdout + r.stderr
    with ds.running(root, config=cfg, board=board) as d:
        status = json.loads(Cli(d.socket_path, short_tmp / "rt").ok(0, "fw", "status", "--json"))
        assert (status["active"], status["pending"], status["counter"]) == ("b", "", 4)
        assert [s["state"] for s in status["slots"]] == ["retired", "committed"]
        # The update bound the keys to this measurement before it switched: the
        # administrator's sealed password record still opens.
        cli = Cli(d.socket_path, short_tmp / "rt")
        keys = json.loads(cli.ok(0, "keys", "status", "--json"))
        assert keys["state"] == "ready"
        assert (
            keys["bound_to"]
            == f"PCR 14 = {_record(root)['pcr_value'][:16]}…"
            != (f"PCR 14 = {measured[:16]}…")
        )
        cli.ok(ALICE_UID, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW)

    # Firmware that fails the boot check (normal mode: the device still starts) is not
    # measured, and the keys stay shut: nothing sealed opens on it.
    (root / "lib" / "firmware" / "b" / "tree" / "bin" / "f0").write_bytes(b"implant")
    assert _boot_unit(config, board_path).returncode == 0
    assert _record(root)["result"] == "failed"
    with ds.running(root, config=cfg, board=board) as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        keys = json.loads(cli.ok(0, "keys", "status", "--json"))
        assert keys["state"] == "locked" and "no firmware was measured" in keys["reason"]
        assert "KeysUnavailable" in cli.fails(
            ALICE_UID, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW
        )


def test_a_board_without_firmware_slots_says_so(daemon: ds.DaemonProcess) -> None:
    r = ds.mfpsec(daemon.socket_path, "fw", "status")
    assert r.returncode == EX_UNAVAILABLE and "no [firmware] section" in r.stderr, r.stderr


def test_the_vendor_signing_tool_without_a_daemon(tmp_path: Path) -> None:
    """`mfpsec fw sign` (the vendor side) makes a bundle and an archive the device accepts,
    and refuses a key that is not a signing key."""
    key, cert = tmp_path / "signer.key", tmp_path / "signer.pem"
    key.write_bytes(
        SIGNER_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert.write_bytes(pem_of(SIGNER))
    tree = tmp_path / "src"
    make_tree(tree)
    args = [
        "fw",
        "sign",
        "--key",
        str(key),
        "--certificate",
        str(cert),
        "--product",
        "mfp",
        "--version",
        "7.1",
        "--epoch",
        "9",
        "--model",
        MODEL,
        "--tree",
        str(tree),
        "--archive",
        str(tmp_path / "fw.mfw"),
        str(tmp_path / "bundle"),
    ]
    r = ds.mfpsec(str(tmp_path / "no-daemon.sock"), *args)
    assert r.returncode == 0, r.stderr
    img = verify_bundle(
        tmp_path / "bundle",
        roots=[ROOT],
        hasher=NativeTreeHasher(),
        model=MODEL,
        minimum_epoch=9,
        clock=ClockCheck.CHECK,
        now=NOW,
    )
    assert (img.manifest.version, img.files) == ("7.1", 16)
    assert r.stdout.strip().endswith(f"manifest {img.digest.hex()}; archive {tmp_path / 'fw.mfw'}")
    with (tmp_path / "fw.mfw").open("rb") as f:
        m = fw_archive.extract(
            f,
            tmp_path / "unpacked",
            lambda raw, sig, pem, pq: verify_header(
                raw,
                sig,
                pem,
                post_quantum_signed=pq,
                roots=[ROOT],
                model=MODEL,
                minimum_epoch=9,
                clock=ClockCheck.CHECK,
                now=NOW,
            )[0],
            max_bytes=1 << 30,
        )
    assert m == img.manifest
    key.write_text("not a key")
    bad = ds.mfpsec(str(tmp_path / "no-daemon.sock"), *args[:-1], str(tmp_path / "b2"))
    assert bad.returncode == 2 and "--key" in bad.stderr
