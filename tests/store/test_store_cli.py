"""The job store through the daemon and the `mfpsec store` CLI: status, the owner rules
for listing and deleting, and the purge with re-authentication, as root and as other uids
in the maintenance group. The objects are put by the store service on the daemon's state
directory before the daemon starts (putting over IPC, with descriptor passing, comes with
the job pipeline)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfpsecd.client import Connection
from mfpsecd.store import api as store
from mfpsecd.store.service import ObjectKind
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CONFIG, MALLORY_UID, Cli
from tests.support.store_stack import put_bytes, stack

pytestmark = pytest.mark.root

CE_UID = 64023
USER_PW = "Plain-user-pass-2026"
CE_PW = "Service-visit-2026"


async def _populate(state_dir: Path) -> dict[str, str]:
    async with stack(state_dir) as s:
        return {
            "alice-1": await put_bytes(s, b"alice page 1", owner="alice"),
            "alice-2": await put_bytes(
                s, b"alice box doc" * 1000, owner="alice", kind=ObjectKind.BOX
            ),
            "bob-1": await put_bytes(
                s, b"bob's secure print", owner="bob", kind=ObjectKind.SECURE_PRINT
            ),
        }


@pytest.mark.sfr("FAU_GEN.2", "FDP_ACC.1", "FDP_ACF.1")
@pytest.mark.spec("A-10", "L-1")
def test_status_owner_rules_delete_and_purge(short_tmp: Path) -> None:
    short_tmp.chmod(0o711)
    root = short_tmp / "d"
    (root / "lib").mkdir(parents=True, mode=0o700)
    ids = asyncio.run(_populate(root / "lib"))
    with ds.running(root, config=CONFIG, tpm="none") as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        status = json.loads(cli.ok(0, "store", "status", "--json"))
        assert (status["objects"], status["by_kind"]) == (
            3,
            {"spool": 1, "box": 1, "secure-print": 1},
        )
        assert status["key_chain"] == "ready" and status["medium"] == "hdd"
        assert status["encryption"].startswith("AES-256-GCM in 64 KiB segments")
        assert (status["encrypted_pdf_retention_days"], status["id_print_timeout_hours"]) == (1, 24)
        human = cli.ok(0, "store", "status")
        assert "crypto-erase, then overwrite" in human
        assert "box documents kept 30 days; encrypted PDFs kept 1 day;" in human
        assert "ID & Print jobs when printed or after 24 h" in human

        cli.ok(0, "users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(0, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW)
        for name, role in (("alice", "user"), ("tech1", "service")):
            cli.ok(
                0,
                "users",
                "add",
                name,
                "--role",
                role,
                "--permanent",
                "--password-file",
                "-",
                stdin=USER_PW if role == "user" else CE_PW,
            )
        cli.ok(0, "logout")

        # A user sees and deletes only their own objects; another's does not exist.
        cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=USER_PW)
        mine = json.loads(cli.ok(ALICE_UID, "store", "list", "--json"))
        assert {o["id"] for o in mine} == {ids["alice-1"], ids["alice-2"]}
        assert "ObjectNotFound" in cli.fails(ALICE_UID, "store", "delete", ids["bob-1"])
        assert "PermissionDenied" in cli.fails(ALICE_UID, "store", "status")
        assert "its key is destroyed" in cli.ok(ALICE_UID, "store", "delete", ids["alice-1"])

        # The service engineer: status and purge (password again), not the contents.
        cli.ok(MALLORY_UID, "login", "-u", "tech1", "--password-file", "-", stdin=CE_PW)
        assert "PermissionDenied" in cli.fails(MALLORY_UID, "store", "list")
        assert json.loads(cli.ok(MALLORY_UID, "store", "status", "--json"))["objects"] == 2
        err = cli.fails(
            MALLORY_UID, "store", "purge", "--yes", "--password-file", "-", stdin="not-the-password"
        )
        assert "AuthenticationFailed" in err
        out = cli.ok(MALLORY_UID, "store", "purge", "--yes", "--password-file", "-", stdin=CE_PW)
        assert "purged 2 object(s)" in out
        assert json.loads(cli.ok(0, "store", "status", "--json"))["objects"] == 0
        assert list((root / "lib" / "store" / "objects").iterdir()) == []

        records = json.loads(cli.ok(0, "audit", "show", "--limit", "0", "--json"))
        deletes = [r for r in records if r["type"] == "store.delete"]
        assert [(r["object"], r["details"]["reason"], r["subject"]["user"]) for r in deletes] == [
            (ids["alice-1"], "request", "alice")
        ]
        purge = [r for r in records if r["type"] == "store.purge"]
        assert purge[-1]["details"]["objects"] == "2" and purge[-1]["subject"]["user"] == "tech1"


@contextlib.contextmanager
def _daemon_with_alice(short_tmp: Path) -> Iterator[tuple[ds.DaemonProcess, Cli]]:
    """A daemon with an administrator and the user alice (no one logged in)."""
    short_tmp.chmod(0o711)
    with ds.running(short_tmp / "d", config=CONFIG, tpm="none") as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        cli.ok(0, "users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(0, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(
            0,
            "users",
            "add",
            "alice",
            "--role",
            "user",
            "--permanent",
            "--password-file",
            "-",
            stdin=USER_PW,
        )
        cli.ok(0, "logout")
        yield d, cli


def test_put_and_get_through_passed_descriptors(short_tmp: Path) -> None:
    """The CLI hands the daemon descriptors (SCM_RIGHTS): the daemon stores and writes
    files it could not even open by path."""
    with _daemon_with_alice(short_tmp) as (d, cli):
        home = cli.runtime_dir(ALICE_UID)  # 0700, alice's: the daemon cannot read it
        document = home / "contract.pdf"
        document.write_bytes(b"%PDF contract " * 50000)
        cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=USER_PW)
        first = cli.ok(
            ALICE_UID, "store", "put", str(document), "--job", "j1", "--kind", "box"
        ).strip()
        second = json.loads(
            cli.ok(ALICE_UID, "store", "put", "-", "--job", "j2", "--json", stdin="piped page\n")
        )
        assert (second["name"], second["size"], second["owner"]) == ("stdin", 11, "alice")
        # Another user's name needs an administrator.
        assert "PermissionDenied" in cli.fails(
            ALICE_UID, "store", "put", "-", "--job", "j3", "--owner", "bob", stdin="x"
        )
        assert cli.ok(ALICE_UID, "store", "get", second["id"]) == "piped page\n"
        out = home / "back.pdf"
        cli.ok(ALICE_UID, "store", "get", first, "-o", str(out))
        assert out.read_bytes() == document.read_bytes()

        # Root (the system peer) stores for a user; the user then sees it.
        third = json.loads(
            cli.ok(
                0,
                "store",
                "put",
                "-",
                "--job",
                "j4",
                "--owner",
                "alice",
                "--json",
                stdin="from the pipeline",
            )
        )
        listed = {o["id"] for o in json.loads(cli.ok(ALICE_UID, "store", "list", "--json"))}
        assert listed == {first, second["id"], third["id"]}

        # The panel releases a held secure-print job: printed, so deleted (S-1).
        held = json.loads(
            cli.ok(
                ALICE_UID,
                "store",
                "put",
                "-",
                "--job",
                "j5",
                "--kind",
                "secure-print",
                "--json",
                stdin="held job",
            )
        )
        with Connection(d.socket_path) as conn:  # root, as the print pipeline
            printed = conn.call(store.MARK_PRINTED, store.ObjectParams(held["id"]))
            assert printed.kind == "secure-print"
        assert held["id"] not in cli.ok(ALICE_UID, "store", "list")

        # A modified object: IntegrityFailure, and not one byte written.
        sealed = d.root / "lib" / "store" / "objects" / first
        data = bytearray(sealed.read_bytes())
        data[len(data) // 2] ^= 1
        sealed.write_bytes(bytes(data))
        out.unlink()
        err = cli.fails(ALICE_UID, "store", "get", first, "-o", str(out))
        assert "io.mfpsecd.Store.IntegrityFailure" in err
        assert out.stat().st_size == 0
        # A file the CLI cannot open is its own clear error, not a traceback.
        err = cli.fails(ALICE_UID, "store", "get", second["id"], "-o", "/nonexistent/x")
        assert "Traceback" not in err and "/nonexistent/x" in err


async def _put_named(state_dir: Path, name: str) -> str:
    async with stack(state_dir) as s:
        return await put_bytes(s, b"page", owner="alice", name=name)


def test_control_characters_are_refused_and_listed_escaped(short_tmp: Path) -> None:
    """A job or object name with a newline, CR or escape sequence would forge lines or
    drive the terminal of whoever lists the store: the API refuses C0/C1 controls, and a
    name that got in another way (an in-process caller) is listed escaped."""
    short_tmp.chmod(0o711)
    root = short_tmp / "d"
    (root / "lib").mkdir(parents=True, mode=0o700)
    asyncio.run(_put_named(root / "lib", "page\x1b]0;owned\x07\nforged-line"))
    with ds.running(root, config=CONFIG, tpm="none") as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        for bad in ("j\n1", "j\r", "j\x1b[2J", "j\x9b31m", "j\x7f"):
            err = cli.fails(0, "store", "put", "-", "--job", bad, stdin="x")
            assert "org.varlink.service.InvalidParameter" in err, err
            err = cli.fails(0, "store", "put", "-", "--job", "j", "--name", bad, stdin="x")
            assert "org.varlink.service.InvalidParameter" in err, err
        listed = cli.ok(0, "store", "list")
        assert "\x1b" not in listed and "\x07" not in listed
        assert "page\\x1b]0;owned\\x07\\x0aforged-line" in listed
        assert len(listed.splitlines()) == 1
        # --json keeps the name exact, for programs.
        (obj,) = json.loads(cli.ok(0, "store", "list", "--json"))
        assert obj["name"] == "page\x1b]0;owned\x07\nforged-line"


def test_refused_puts_hold_no_descriptor(short_tmp: Path) -> None:
    """A descriptor passed for a call is released when the call ends, whatever its
    outcome: refused puts (by the handler, by the parameter check, for want of a session)
    neither keep the daemon's descriptors open nor use up the uid's few tokens, which
    the panel (one uid for every user) would otherwise lose for a minute."""
    with _daemon_with_alice(short_tmp) as (d, cli):
        fds = Path(f"/proc/{d.pid}/fd")
        before = len(list(fds.iterdir()))
        for _ in range(10):  # more than the 8 a uid may hold
            # Root without a session has no user to own the object: refused in the handler.
            assert "InvalidParameter" in cli.fails(0, "store", "put", "-", "--job", "j", stdin="x")
            # Refused by the parameter check, before any handler.
            assert "InvalidParameter" in cli.fails(
                0, "store", "put", "-", "--job", "j\n", "--owner", "alice", stdin="x"
            )
            # Refused for want of a session.
            assert "AuthenticationRequired" in cli.fails(
                ALICE_UID, "store", "put", "-", "--job", "j", stdin="x"
            )
        assert len(list(fds.iterdir())) == before
        stored = json.loads(
            cli.ok(0, "store", "put", "-", "--job", "j", "--owner", "alice", "--json", stdin="kept")
        )
        cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=USER_PW)
        assert cli.ok(ALICE_UID, "store", "get", stored["id"]) == "kept"
        assert len(list(fds.iterdir())) == before


def test_a_store_on_a_data_journalled_filesystem_says_crypto_erase_only(short_tmp: Path) -> None:
    """A real ext4 mounted with data=journal under the job store: the daemon finds it in
    the mount table and says that an overwrite cannot reach the blocks there."""
    image, mnt = short_tmp / "fs.img", short_tmp / "mnt"
    mnt.mkdir()
    with image.open("wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop,data=journal", str(image), str(mnt)], check=True)
    try:
        board = {"extra": {"store": {"dir": str(mnt / "store"), "medium": "hdd"}}}
        with ds.running(short_tmp / "d", config=CONFIG, tpm="none", board=board) as d:
            status = json.loads(ds.mfpsec(d.socket_path, "store", "status", "--json").stdout)
            assert status["delete_method"].startswith(
                "crypto-erase only (ext4 with data=journal keeps copies of the data"
            )
            assert '"event":"store_overwrite_ineffective"' in d.log()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
