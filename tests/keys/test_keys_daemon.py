"""The key chain through the running daemon (its own swtpm), driven by the real CLI and
client: restart recovery, backup -> TPM replaced -> restore, destruction, the device
identity, and a scan of the daemon's memory for secrets and master keys (K-4)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.base.errors import EX_DATAERR, EX_NOPERM, ErrorCode, MfpsecError
from mfpsecd.client import Connection
from mfpsecd.keys import api as keys
from mfpsecd.keys.chain import MASTER_LABEL
from mfpsecd.keys.model.pcr_policy import PcrBinding
from mfpsecd.keys.ports import TpmKey
from mfpsecd.system import api as system
from tests.support import daemon as ds
from tests.support.tpm import requires_swtpm, swtpm

pytestmark = requires_swtpm

PASSPHRASE = "Service-engineer-passphrase-1"


def _keys(d: ds.DaemonProcess) -> Connection:
    return Connection(d.socket_path, timeout=60)


def _db(d: ds.DaemonProcess) -> Path:
    return d.root / "lib" / "state.sqlite3"


@pytest.mark.sfr("FPT_SKP_EXT.1")
@pytest.mark.spec("K-4")
def test_secrets_survive_restart_and_rotation_through_the_cli(short_tmp: Path) -> None:
    root = short_tmp / "d"
    with ds.running(root) as d:
        st = ds.mfpsec(d.socket_path, "keys", "status")
        assert st.returncode == 0, st.stderr
        assert "key chain: ready" in st.stdout and "TPM swtpm, IBM" in st.stdout
        for name, value in [("smtp-password", "pa55:word\n"), ("snmp-community", "c0mmunity")]:
            r = ds.mfpsec(
                d.socket_path,
                "secrets",
                "set",
                name,
                "--kind",
                "credential",
                "--value-file",
                "-",
                stdin=value,
            )
            assert r.returncode == 0, r.stderr
        r = ds.mfpsec(d.socket_path, "keys", "rotate")
        assert r.returncode == 0 and "generation 2; 2 secrets re-sealed" in r.stdout, r.stderr
        bad = ds.mfpsec(d.socket_path, "secrets", "delete", "nope")
        assert bad.returncode == EX_DATAERR and "SecretNotFound" in bad.stderr
    db = (root / "lib" / "state.sqlite3").read_bytes()
    assert b"pa55:word" not in db and b"c0mmunity" not in db
    with ds.running(root) as d:
        listed = ds.mfpsec(d.socket_path, "secrets", "list", "--json")
        assert listed.returncode == 0
        import json

        items = json.loads(listed.stdout)
        assert [(i["name"], i["generation"], i["size"]) for i in items] == [
            ("smtp-password", 2, 9),
            ("snmp-community", 2, 9),
        ]
        # A rotation opens every secret: it succeeds only if all were recovered.
        assert _keys(d).call(keys.ROTATE_MASTER_KEY).generation == 3


def test_the_daemons_own_secrets_cannot_be_set_or_deleted_as_secrets(short_tmp: Path) -> None:
    with ds.running(short_tmp / "d", tpm="none") as d, _keys(d) as conn:
        for name in ("auth.user.admin", "auth.totp.admin", "keys.backup-passphrase"):
            with pytest.raises(MfpsecError) as exc:
                conn.call(keys.SET_SECRET, keys.SetSecretParams(name, "other", bytearray(b"x")))
            assert exc.value.code is ErrorCode.INVALID_PARAMETER, name
            with pytest.raises(MfpsecError) as exc:
                conn.call(keys.DELETE_SECRET, keys.SecretNameParams(name))
            assert exc.value.code is ErrorCode.INVALID_PARAMETER, name
        conn.call(keys.SET_SECRET, keys.SetSecretParams("keysafe", "other", bytearray(b"x")))


def test_a_restore_from_a_relative_path_is_refused_and_audited(short_tmp: Path) -> None:
    with ds.running(short_tmp / "d", tpm="none") as d, _keys(d) as conn:
        with pytest.raises(MfpsecError) as exc:
            conn.call(
                keys.RESTORE_KEYS,
                keys.RestoreParams("backups/mfp.mfpkeys", bytearray(b"Service-passphrase-1")),
            )
        assert exc.value.code is ErrorCode.INVALID_PARAMETER
        assert exc.value.params.get("parameter") == "source"
        log = ds.mfpsec(d.socket_path, "audit", "show", "--type", "keys.restore", "--json")
        assert log.returncode == 0, log.stderr
        (refused,) = json.loads(log.stdout)
        assert (refused["object"], refused["outcome"]) == ("backups/mfp.mfpkeys", "failure")


def test_backup_tpm_replaced_restore_through_the_cli(short_tmp: Path) -> None:
    root, usb = short_tmp / "d", short_tmp / "usb"
    usb.mkdir()
    with ds.running(root) as d:
        Connection(d.socket_path).call(
            keys.SET_SECRET,
            keys.SetSecretParams("admin-password", "password", bytearray(b"Adm1n-password!")),
        )
        weak = ds.mfpsec(
            d.socket_path,
            "keys",
            "backup",
            "--to",
            str(usb),
            "--passphrase-file",
            "-",
            stdin="short",
        )
        assert weak.returncode == EX_DATAERR and "PassphraseTooWeak" in weak.stderr
        r = ds.mfpsec(
            d.socket_path,
            "keys",
            "backup",
            "--to",
            str(usb),
            "--passphrase-file",
            "-",
            stdin=PASSPHRASE + "\n",
        )
        assert r.returncode == 0, r.stderr
        (backup,) = usb.glob("*.mfpkb")
        fingerprint = _keys(d).call(keys.GET_KEY_STATUS).wrapping_key_fingerprint
    shutil.rmtree(root / "lib" / "tpm")  # the TPM is replaced: a fresh one, other seeds
    with ds.running(root) as d:
        with Connection(d.socket_path) as conn:
            assert conn.call(system.GET_STATUS).state.value == "degraded"
        st = _keys(d).call(keys.GET_KEY_STATUS)
        assert st.state == "locked" and "restore the key backup" in st.reason
        with pytest.raises(MfpsecError) as exc:
            _keys(d).call(keys.SET_SECRET, keys.SetSecretParams("x", "other", bytearray(b"y")))
        assert exc.value.code is ErrorCode.KEYS_UNAVAILABLE
        wrong = ds.mfpsec(
            d.socket_path,
            "keys",
            "restore",
            "--from",
            str(backup),
            "--passphrase-file",
            "-",
            stdin="Not-the-passphrase-123",
        )
        assert wrong.returncode == EX_NOPERM and "WrongPassphrase" in wrong.stderr
        ok = ds.mfpsec(
            d.socket_path,
            "keys",
            "restore",
            "--from",
            str(backup),
            "--passphrase-file",
            "-",
            stdin=PASSPHRASE,
        )
        assert ok.returncode == 0, ok.stderr
        st = _keys(d).call(keys.GET_KEY_STATUS)
        assert (st.state, st.wrapping_key_fingerprint) == ("ready", fingerprint)
        # The secret opened under the restored key.
        assert _keys(d).call(keys.ROTATE_MASTER_KEY).secrets == 1
        with Connection(d.socket_path) as conn:
            assert conn.call(system.GET_STATUS).state.value == "ready"


@pytest.mark.sfr("FCS_CKM.1")
@pytest.mark.spec("E-2", "K-1", "K-5")
def test_device_identity_is_signed_inside_the_tpm(short_tmp: Path) -> None:
    with ds.running(short_tmp / "d") as d:
        ident = _keys(d).call(keys.GET_DEVICE_IDENTITY)
    public = serialization.load_pem_public_key(ident.public_key_pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib

    assert hashlib.sha256(spki).hexdigest() == ident.fingerprint
    cert = x509.load_pem_x509_certificate(ident.certificate_pem.encode())
    assert cert.public_key() == public
    public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    cert.verify_directly_issued_by(cert)  # self-signed, and valid as such
    csr = x509.load_pem_x509_csr(ident.csr_pem.encode())
    assert csr.is_signature_valid and csr.public_key() == public
    assert ident.fingerprint[:16] in csr.subject.rfc4514_string()


@pytest.mark.sfr("FCS_CKM.4", "FPT_SKP_EXT.1")
@pytest.mark.spec("E-3", "K-4")
def test_destroy_erases_keys_and_secrets(short_tmp: Path) -> None:
    root = short_tmp / "d"
    with ds.running(root) as d:
        k = _keys(d)
        k.call(
            keys.SET_SECRET,
            keys.SetSecretParams("to-be-destroyed", "password", bytearray(b"Destroy-me-please")),
        )
        before = k.call(keys.GET_KEY_STATUS).wrapping_key_fingerprint
        refused = ds.mfpsec(d.socket_path, "keys", "destroy", "--confirm", "0" * 64)
        assert refused.returncode == EX_DATAERR
        ok = ds.mfpsec(d.socket_path, "keys", "destroy", "--confirm", before)
        assert ok.returncode == 0, ok.stderr
        gone = _keys(d).call(keys.GET_KEY_STATUS)
        assert gone.state == "destroyed"
        # Nothing of the destroyed keys is reported, and there is nothing left to destroy.
        assert (gone.wrapping_key_fingerprint, gone.identity_fingerprint) == ("", "")
        assert gone.master_key_generation == 0
        again = ds.mfpsec(d.socket_path, "keys", "destroy", "--confirm", before)
        assert again.returncode == EX_DATAERR
        with sqlite3.connect(_db(d)) as conn:
            for table in ("tpm_keys", "master_keys", "secrets"):
                assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)
    with ds.running(root) as d:
        st = _keys(d).call(keys.GET_KEY_STATUS)
        assert st.state == "ready" and st.wrapping_key_fingerprint != before
        assert st.secrets == 0


# The smallest Argon2 cost the configuration accepts: these tests are about the flows.
_AUTH = {"auth": {"argon2_memory_kib": 8192, "argon2_iterations": 1}}
_ADMIN_PW, _BOB_PW = "Adm1n-password-2026", "Plain-user-pass-2026"


def _login(
    d: ds.DaemonProcess, user: str, password: str, runtime: Path
) -> subprocess.CompletedProcess[str]:
    return ds.mfpsec(
        d.socket_path,
        "login",
        "-u",
        user,
        "--password-file",
        "-",
        stdin=password,
        env={"XDG_RUNTIME_DIR": str(runtime)},
    )


def test_after_destroy_the_accounts_are_gone_and_the_device_is_at_its_first_start(
    short_tmp: Path,
) -> None:
    """Destroying the keys erases the password verifiers with every other secret: the
    accounts go with them, their sessions end, and after the restart the device is at
    its first start (A-3), where InitializeAdministrator works again. Before, every
    account was left half there: login and passwd answered System.Internal."""
    root, runtime = short_tmp / "d", short_tmp / "rt"
    runtime.mkdir(mode=0o700)
    with ds.running(root, config=_AUTH) as d:
        assert (
            ds.mfpsec(
                d.socket_path, "users", "init", "admin", "--password-file", "-", stdin=_ADMIN_PW
            ).returncode
            == 0
        )
        assert _login(d, "admin", _ADMIN_PW, runtime).returncode == 0
        before = _keys(d).call(keys.GET_KEY_STATUS).wrapping_key_fingerprint
        ok = ds.mfpsec(d.socket_path, "keys", "destroy", "--confirm", before)
        assert ok.returncode == 0, ok.stderr
        with sqlite3.connect(_db(d)) as conn:
            assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)
        conn.close()
    with ds.running(root, config=_AUTH) as d:
        status = ds.mfpsec(d.socket_path, "status")
        assert "no administrator password is set" in status.stdout
        gone = _login(d, "admin", _ADMIN_PW, runtime)
        assert gone.returncode == EX_NOPERM and "AuthenticationFailed" in gone.stderr
        assert "Internal" not in gone.stderr
        assert (
            ds.mfpsec(
                d.socket_path, "users", "init", "admin", "--password-file", "-", stdin=_ADMIN_PW
            ).returncode
            == 0
        )
        assert _login(d, "admin", _ADMIN_PW, runtime).returncode == 0


def test_an_account_whose_verifier_is_gone_fails_like_a_wrong_password(short_tmp: Path) -> None:
    """The verifier's record deleted under the daemon (a damaged or tampered state
    store): the login is refused as an ordinary failure (no hint the account exists, no
    System.Internal), and the administrator (or root) sets a new password."""
    root, runtime = short_tmp / "d", short_tmp / "rt"
    runtime.mkdir(mode=0o700)
    with ds.running(root, config=_AUTH) as d:
        assert (
            ds.mfpsec(
                d.socket_path, "users", "init", "admin", "--password-file", "-", stdin=_ADMIN_PW
            ).returncode
            == 0
        )
        assert _login(d, "admin", _ADMIN_PW, runtime).returncode == 0
        assert (
            ds.mfpsec(
                d.socket_path,
                "users",
                "add",
                "bob",
                "--role",
                "user",
                "--permanent",
                "--password-file",
                "-",
                stdin=_BOB_PW,
                env={"XDG_RUNTIME_DIR": str(runtime)},
            ).returncode
            == 0
        )
    with sqlite3.connect(root / "lib" / "state.sqlite3") as conn:
        conn.execute("DELETE FROM secrets WHERE name = 'auth.user.bob'")
    conn.close()
    with ds.running(root, config=_AUTH) as d:
        refused = _login(d, "bob", _BOB_PW, runtime)
        assert refused.returncode == EX_NOPERM and "AuthenticationFailed" in refused.stderr
        assert "Internal" not in refused.stderr
        assert '"event":"auth_verifier_missing"' in d.log()
        assert _login(d, "admin", _ADMIN_PW, runtime).returncode == 0
        reset = ds.mfpsec(
            d.socket_path,
            "users",
            "passwd",
            "bob",
            "--permanent",
            "--password-file",
            "-",
            stdin="Another-user-pass-2026",
            env={"XDG_RUNTIME_DIR": str(runtime)},
        )
        assert reset.returncode == 0, reset.stderr
        assert _login(d, "bob", "Another-user-pass-2026", runtime).returncode == 0


def _dump(pid: int) -> bytes:
    """Every writable mapping of a process: where anything it computed can live."""
    out = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "w" not in fields[1]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                out.append(mem.read(end - start))
            except (OSError, ValueError):
                continue
    return b"".join(out)


@pytest.mark.sfr("FCS_CKM.4", "FPT_SKP_EXT.1")
@pytest.mark.spec("E-3", "K-4")
@pytest.mark.root
def test_no_secret_or_master_key_left_in_daemon_memory(short_tmp: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("reading another process's memory needs root")
    root = short_tmp / "d"
    marker = os.urandom(24).hex().encode()  # 48 printable bytes, found nowhere by chance
    with ds.running(root) as d:
        with sqlite3.connect(_db(d)) as conn:
            (old_wrapped,) = conn.execute("SELECT wrapped FROM master_keys").fetchone()
            # This board has no firmware PCR: the key is bound to its commands only.
            public, private = conn.execute("SELECT public, private FROM key_bindings").fetchone()
            wrapping = TpmKey(public, private, PcrBinding((), ()))
        k = _keys(d)
        k.call(
            keys.SET_SECRET, keys.SetSecretParams("memscan-marker", "password", bytearray(marker))
        )
        # The secret is opened and re-sealed: "used".
        assert k.call(keys.ROTATE_MASTER_KEY).generation == 2
        k.call(keys.GET_DEVICE_IDENTITY)
        dump = _dump(d.pid)
        with sqlite3.connect(_db(d)) as conn:
            (new_wrapped,) = conn.execute("SELECT wrapped FROM master_keys").fetchone()
        spki = k.call(keys.GET_KEY_STATUS).wrapping_key_fingerprint
    # The daemon (and its swtpm) are gone: unwrap both master keys with the same TPM state.
    with swtpm(root / "lib" / "tpm") as tpm:

        async def unwrap() -> list[bytes]:
            backend = tpm.backend()
            await backend.open()
            keys = []
            for wrapped in (old_wrapped, new_wrapped):
                with await backend.decrypt(wrapping, wrapped, MASTER_LABEL) as key:
                    keys.append(bytes(key.view()))
            der = await backend.public_key_der(wrapping)
            await backend.close()
            return [*keys, der]

        old_key, new_key, der = asyncio.run(unwrap())
    import hashlib

    assert hashlib.sha256(der).hexdigest() == spki
    assert der in dump  # positive control: the scan does see the daemon's live objects
    assert len(dump) > 1 << 20
    assert marker not in dump
    assert base64.b64encode(marker) not in dump
    assert old_key not in dump
    assert new_key not in dump


@pytest.mark.root
def test_no_login_password_left_in_daemon_memory(short_tmp: Path) -> None:
    """Logins of several users, a wrong password, a password change and a service
    engineer's re-authentication: afterwards no password is anywhere in the daemon's
    writable memory, in clear or as it travelled (base64)."""
    root, runtime = short_tmp / "d", short_tmp / "rt"
    runtime.mkdir(mode=0o700)
    tag = os.urandom(8).hex()
    passwords = {
        "admin": f"Root-{tag}-Pw",
        "carol": f"First-{tag}-Pw",
        "dave": f"Second-{tag}-Pw",
        "tech1": f"Visit-{tag}-Pw",
    }
    changed = f"Changed-{tag}-Pw"
    with ds.running(root, config=_AUTH) as d:

        def cli(*args: str, stdin: str) -> None:
            r = ds.mfpsec(d.socket_path, *args, stdin=stdin, env={"XDG_RUNTIME_DIR": str(runtime)})
            assert r.returncode == 0, (args, r.stderr)

        cli("users", "init", "admin", "--password-file", "-", stdin=passwords["admin"])
        cli("login", "-u", "admin", "--password-file", "-", stdin=passwords["admin"])
        for user, role in (("carol", "user"), ("dave", "user"), ("tech1", "service")):
            cli(
                "users",
                "add",
                user,
                "--role",
                role,
                "--permanent",
                "--password-file",
                "-",
                stdin=passwords[user],
            )
        for _ in range(3):
            for user, pw in passwords.items():
                cli("login", "-u", user, "--password-file", "-", stdin=pw)
        wrong = _login(d, "dave", f"Wrong-{tag}-Pw", runtime)
        assert wrong.returncode == EX_NOPERM
        cli("login", "-u", "carol", "--password-file", "-", stdin=passwords["carol"])
        cli("passwd", "--password-file", "-", stdin=f"{passwords['carol']}\n{changed}")
        cli("login", "-u", "tech1", "--password-file", "-", stdin=passwords["tech1"])
        cli("store", "purge", "--yes", "--password-file", "-", stdin=passwords["tech1"])
        dump = _dump(d.pid)
    assert len(dump) > 1 << 20
    for pw in (*passwords.values(), f"Wrong-{tag}-Pw", changed):
        assert pw.encode() not in dump, pw
        assert base64.b64encode(pw.encode())[:-4] not in dump, pw
