"""The key chain and secret store against a real swtpm and a real SQLite store (K-1..K-4).

Each test drives the services in-process, as the daemon wires them, so it can read back
plaintext through SecretStore.get (which no IPC method offers) and restart the chain by
building it again on the same state.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tpm2_pytss.types import TPM2B_PUBLIC

from mfpsecd.base import identity_keys
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.chain import ChainState, KeyChain
from mfpsecd.keys.model import backup_file
from mfpsecd.keys.secrets import SecretKind, SecretStore
from tests.support.fakeclock import FakeClock
from tests.support.keychain_stack import (
    FAST,
    PASSPHRASE,
    SECRETS,
    assert_all_readable,
    expect,
    open_stack,
    put_all,
    run,
)
from tests.support.tpm import requires_swtpm, swtpm

pytestmark = requires_swtpm


@pytest.mark.sfr("FCS_CKM.1", "FCS_KYC_EXT.1", "FPT_KYP_EXT.1")
@pytest.mark.spec("E-2", "K-1", "K-2", "K-4", "K-5")
def test_chain_is_created_and_a_restart_recovers_every_secret(tmp_path: Path) -> None:
    with swtpm(tmp_path / "tpm") as tpm:

        async def first() -> None:
            s = await open_stack(tmp_path, tpm)
            assert s.chain.state is ChainState.READY
            assert s.chain.provisioned is True  # this start made it: keys.provision
            facts = await s.chain.facts()
            assert (facts.master_generation, facts.software_keys) == (1, False)
            assert facts.tpm_manufacturer == "IBM"  # swtpm's libtpms
            await put_all(s)
            assert [i.name for i in await s.secrets.list()] == sorted(SECRETS)
            # At shutdown the chain forgets its master keys: a late caller is told the keys
            # are unavailable, never that a blob failed its integrity check.
            await s.chain.close()
            assert (await s.chain.facts()).state is ChainState.CLOSED
            with expect(ErrorCode.KEYS_UNAVAILABLE):
                await s.secrets.get("admin-password")
            with expect(ErrorCode.KEYS_UNAVAILABLE):
                await s.secrets.put("late", SecretKind.CREDENTIAL, SecretBytes(bytearray(b"x")))
            await s.close()

        async def second() -> None:
            s = await open_stack(tmp_path, tpm)
            assert s.chain.provisioned is None  # unwrapped, not made again
            await assert_all_readable(s)
            with expect(ErrorCode.SECRET_NOT_FOUND):
                await s.secrets.get("nope")
            await s.secrets.delete("totp-admin")
            with expect(ErrorCode.SECRET_NOT_FOUND):
                await s.secrets.delete("totp-admin")
            await s.close()

        run(first)
        run(second)
    # Nothing in the database is plaintext or an unwrapped key.
    db = (tmp_path / "state.sqlite3").read_bytes()
    for _, value in SECRETS.values():
        assert value not in db


@pytest.mark.sfr("FCS_KYC_EXT.1")
@pytest.mark.spec("K-1", "K-2")
def test_state_copied_to_a_board_with_another_tpm_unwraps_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    with swtpm(a / "tpm") as tpm_a:

        async def provision() -> None:
            s = await open_stack(a, tpm_a)
            await put_all(s)
            await s.close()

        run(provision)
    b.mkdir()
    shutil.copy(a / "state.sqlite3", b / "state.sqlite3")
    with swtpm(b / "tpm") as tpm_b:  # a fresh TPM: another owner seed, another SRK

        async def steal() -> None:
            s = await open_stack(b, tpm_b)
            assert s.chain.state is ChainState.LOCKED
            with expect(ErrorCode.KEYS_UNAVAILABLE):
                await s.secrets.get("admin-password")
            with expect(ErrorCode.KEYS_UNAVAILABLE):
                await s.secrets.put("x", SecretKind.OTHER, SecretBytes(bytearray(b"v")))
            comp = s.health.get("keys")
            assert comp is not None and comp.state.value == "failed"
            assert "restore the key backup" in comp.detail
            await s.close()

        run(steal)


def _flip(db: Path, table: str, column: str, where: str, offset: int) -> None:
    with sqlite3.connect(db) as conn:
        (blob,) = conn.execute(f"SELECT {column} FROM {table} WHERE {where}").fetchone()
        blob = bytearray(blob)
        blob[offset] ^= 0x01
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (bytes(blob),))


def _swap(db: Path) -> None:
    """Move smtp-credential's sealed value under admin-password's name."""
    with sqlite3.connect(db) as conn:
        nonce, sealed = conn.execute(
            "SELECT nonce, sealed FROM secrets WHERE name = 'smtp-credential'"
        ).fetchone()
        conn.execute(
            "UPDATE secrets SET nonce = ?, sealed = ? WHERE name = 'admin-password'",
            (nonce, sealed),
        )


@pytest.mark.parametrize(
    ("tamper", "code", "where"),
    [
        # The TPM-wrapped RSA key: the TPM's integrity check refuses it.
        (
            lambda db: _flip(db, "key_bindings", "private", "1", 60),
            ErrorCode.KEYS_UNAVAILABLE,
            "start",
        ),
        # The RSA-OAEP-wrapped master key.
        (
            lambda db: _flip(db, "master_keys", "wrapped", "generation = 1", 0),
            ErrorCode.KEY_INTEGRITY,
            "start",
        ),
        # One sealed secret; and one moved under another name.
        (
            lambda db: _flip(db, "secrets", "sealed", "name = 'admin-password'", 5),
            ErrorCode.KEY_INTEGRITY,
            "get",
        ),
        (_swap, ErrorCode.KEY_INTEGRITY, "get"),
    ],
    ids=["wrapping-key-blob", "wrapped-master-key", "sealed-secret", "swapped-secret"],
)
def test_modified_blobs_are_refused_with_a_typed_error(
    tmp_path: Path, tamper: Callable[[Path], None], code: ErrorCode, where: str
) -> None:
    with swtpm(tmp_path / "tpm") as tpm:

        async def provision() -> None:
            s = await open_stack(tmp_path, tpm)
            await put_all(s)
            await s.close()

        run(provision)
        tamper(tmp_path / "state.sqlite3")

        async def reopen() -> None:
            s = await open_stack(tmp_path, tpm)
            if where == "start":
                assert s.chain.state is ChainState.LOCKED
            with expect(code):
                await s.secrets.get("admin-password")
            if where == "get":  # the others are untouched
                with await s.secrets.get("tls-key") as plain:
                    assert bytes(plain.view()) == SECRETS["tls-key"][1]
            await s.close()

        run(reopen)


@pytest.mark.sfr("FCS_CKM.1")
@pytest.mark.spec("E-2", "K-1", "K-5")
def test_rotation_reseals_everything_under_a_new_master_key(tmp_path: Path) -> None:
    with swtpm(tmp_path / "tpm") as tpm:

        async def rotate() -> None:
            s = await open_stack(tmp_path, tpm, rotate_batch=3)
            await put_all(s)
            before = {i.name: i.generation for i in await s.secrets.list()}
            assert set(before.values()) == {1}
            assert await s.chain.rotate() == 2
            assert {i.generation for i in await s.secrets.list()} == {2}
            await assert_all_readable(s)
            await s.close()
            with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
                assert conn.execute("SELECT generation, status FROM master_keys").fetchall() == [
                    (2, "active")
                ]

        async def restart() -> None:
            s = await open_stack(tmp_path, tpm)
            await assert_all_readable(s)
            assert (await s.chain.facts()).master_generation == 2
            await s.close()

        run(rotate)
        run(restart)


def test_backup_wipe_tpm_restore_on_a_fresh_tpm(tmp_path: Path) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    backup: list[Path] = []
    with swtpm(state / "tpm") as tpm:

        async def make_backup() -> None:
            s = await open_stack(state, tpm)
            await put_all(s)
            with expect(ErrorCode.PASSPHRASE_TOO_WEAK):
                await s.chain.backup(SecretBytes(bytearray(b"short")), usb)
            with expect(ErrorCode.PASSPHRASE_TOO_WEAK):
                await s.chain.backup(SecretBytes(bytearray(b"a" * 20)), usb)
            with expect(ErrorCode.BACKUP_TARGET_UNUSABLE):
                await s.chain.backup(SecretBytes(bytearray(PASSPHRASE)), usb / "missing")
            result = await s.chain.backup(SecretBytes(bytearray(PASSPHRASE)), usb)
            backup.append(result.path)
            assert result.path.parent == usb and result.path.stat().st_mode & 0o777 == 0o600
            facts = await s.chain.facts()
            assert facts.backups == 1 and facts.last_backup_at
            with expect(ErrorCode.RESTORE_NOT_NEEDED):
                await s.chain.restore(SecretBytes(bytearray(PASSPHRASE)), result.path)
            await s.close()

        run(make_backup)
    shutil.rmtree(state / "tpm")  # the TPM dies: its state (owner seed, SRK) is gone

    # A second device's backup, for the "from another device" case.
    other = tmp_path / "other"
    other.mkdir()
    with swtpm(other / "tpm") as tpm_other:

        async def other_backup() -> None:
            s = await open_stack(other, tpm_other, backup_cost=FAST)
            backup.append((await s.chain.backup(SecretBytes(bytearray(PASSPHRASE)), usb)).path)
            await s.close()

        run(other_backup)

    good = backup[0].read_bytes()
    damaged = tmp_path / "damaged.mfpkb"
    damaged.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    truncated = tmp_path / "truncated.mfpkb"
    truncated.write_bytes(good[:-40])
    junk = tmp_path / "junk.mfpkb"
    junk.write_bytes(b"PK\x03\x04 not a backup at all")

    with swtpm(state / "tpm") as fresh:

        async def restore() -> None:
            s = await open_stack(state, fresh)
            assert s.chain.state is ChainState.LOCKED
            for path, passphrase, code in [
                (backup[0], b"Wrong-passphrase-2026!", ErrorCode.WRONG_PASSPHRASE),
                (damaged, PASSPHRASE, ErrorCode.BACKUP_INVALID),
                (truncated, PASSPHRASE, ErrorCode.BACKUP_INVALID),
                (junk, PASSPHRASE, ErrorCode.BACKUP_INVALID),
                (backup[1], PASSPHRASE, ErrorCode.BACKUP_OTHER_DEVICE),
                (tmp_path / "absent.mfpkb", PASSPHRASE, ErrorCode.BACKUP_TARGET_UNUSABLE),
            ]:
                with expect(code):
                    await s.chain.restore(SecretBytes(bytearray(passphrase)), path)
                assert s.chain.state is ChainState.LOCKED  # nothing changed
            await s.chain.restore(SecretBytes(bytearray(PASSPHRASE)), backup[0])
            await assert_all_readable(s)
            await s.close()

        async def after_restart() -> None:
            s = await open_stack(state, fresh)
            await assert_all_readable(s)
            await s.close()

        run(restore)
        run(after_restart)


@pytest.mark.parametrize("planted", [False, True])
def test_a_restore_links_only_the_identity_the_keys_attested(tmp_path: Path, planted: bool) -> None:
    """After a TPM replacement the new identity key vouches for the old one in the
    identity history. Someone holding the disk who put their own public key in the
    identity row must not be vouched for: the restore links only the identity whose
    fingerprint the (restored) master key sealed while the old TPM could prove it."""
    usb, state = tmp_path / "usb", tmp_path / "state"
    usb.mkdir()
    state.mkdir()
    old: list[str] = []
    with swtpm(state / "tpm") as tpm:

        async def make_backup() -> None:
            s = await open_stack(state, tpm, backup_cost=FAST)
            old.append(identity_keys.fingerprint(s.chain.identity_public_der))
            await s.chain.backup(SecretBytes(bytearray(PASSPHRASE)), usb)
            if planted:  # a key of the attacker's, as a TPM public area the backend reads
                attacker = ec.generate_private_key(ec.SECP256R1()).public_key()
                pem = attacker.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                public = TPM2B_PUBLIC.from_pem(pem).marshal()
                with sqlite3.connect(state / "state.sqlite3") as conn:
                    conn.execute(
                        "UPDATE tpm_keys SET public = ? WHERE role = 'identity'", (public,)
                    )
                conn.close()
                old.append(
                    identity_keys.fingerprint(
                        attacker.public_bytes(
                            serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo,
                        )
                    )
                )
            await s.close()

        run(make_backup)
    shutil.rmtree(state / "tpm")
    (backup,) = usb.glob("*.mfpkb")
    with swtpm(state / "tpm") as fresh:

        async def restore() -> None:
            s = await open_stack(state, fresh, backup_cost=FAST)
            await s.chain.restore(SecretBytes(bytearray(PASSPHRASE)), backup)
            known = [k.fingerprint for k in await s.chain.identities()]
            if planted:
                assert len(known) == 1 and old[1] not in known and not s.chain.restored_link
            else:
                assert known[1:] == [old[0]] and s.chain.restored_link
            await s.close()

        run(restore)


def test_backup_file_format_is_checked_before_any_crypto() -> None:
    header = backup_file.BackupHeader(
        created_at="2026-11-22T00:00:00.000Z",
        device_fingerprint="ab" * 32,
        key_backend="tpm",
        key_public="AAAA",
        kdf=backup_file.KdfParams("argon2id", 65536, 3, 1, "c2FsdA=="),
    )
    aad = backup_file.prefix(header)
    data = backup_file.assemble(aad, b"\1" * 12, b"\2" * 40)
    parsed = backup_file.parse(data)
    assert parsed.header == header and parsed.aad == aad and parsed.sealed == b"\2" * 40
    assert backup_file.parse(data).header.salt == b"salt"
    for bad, reason in [
        (data[:-1], "checksum"),
        (b"MFPSKEYB\0\2" + data[10:], "version 2"),
        (data[:30], "truncated"),
        (b"x" * 70000, "larger"),
    ]:
        with pytest.raises(MfpsecError, match=reason):
            backup_file.parse(bad)


def test_software_key_mode_works_and_says_so(tmp_path: Path) -> None:
    """A board without a TPM: the same chain on software keys, DEGRADED in status."""
    from mfpsecd.keys.backends.soft_keys import SoftwareKeys

    async def scenario() -> None:
        for round_ in range(2):  # provision, then a restart
            clock = FakeClock()
            health = HealthRegistry(clock)
            state = SqliteState(tmp_path / "state.sqlite3")
            await state.open()
            keys = SoftwareKeys(tmp_path)
            chain = KeyChain(state, keys, NativeKeyCrypto(), clock, health)
            secrets = SecretStore(state, chain, clock)
            await chain.start()
            comp = health.get("keys")
            assert comp is not None and comp.state.value == "degraded"
            assert "software keys" in comp.detail
            assert (await chain.facts()).software_keys
            if round_ == 0:
                for name, (kind, value) in SECRETS.items():
                    await secrets.put(name, kind, SecretBytes(bytearray(value)))
                await keys.counter_define(0x01000100)
                assert await keys.counter_increment(0x01000100) == 2
            else:
                assert await chain.rotate() == 2
                for name, (_, value) in SECRETS.items():
                    with await secrets.get(name) as plain:
                        assert bytes(plain.view()) == value
                assert await keys.counter_read(0x01000100) == 2
            await chain.close()
            await state.close()

    run(scenario)
