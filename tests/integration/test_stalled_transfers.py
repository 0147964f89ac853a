"""No caller can freeze the daemon (issue 22, item 1): more stalled job-store uploads
than the store has workers (pipes whose writer never writes nor closes, as a print
stream that hangs) while the administrator changes the IP filter (in a network namespace
of the test's own) and people log in and ask for status. Those answer at once;
each owner's third upload is refused with Busy; every stalled upload ends with
TransferTimeout after the configured inactivity timeout, and nothing of them is stored.
The latencies are printed (pytest -s) beside a baseline taken before the stall."""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from pathlib import Path

import pytest

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.client import Connection
from mfpsecd.store import api as store
from tests.support import daemon as ds
from tests.support.auth_cli import ADMIN_PW, ALICE_UID, CONFIG, Cli
from tests.support.netlab import Lab, dut_board, requires_netns

pytestmark = [pytest.mark.root, requires_netns]

USER_PW = "Plain-user-pass-2026"
IDLE_S = 3.0
OWNERS = ("alice", "bob", "carol")  # each stalls its share (2): 6 > the 4 workers


def _stalled_put(socket_path: str, owner: str) -> tuple[str, float]:
    """A Put whose pipe never delivers a byte: → (the error's wire name, seconds)."""
    r, w = os.pipe()
    started = time.monotonic()
    try:
        with Connection(socket_path, timeout=60) as conn:
            token = conn.pass_descriptor(r)
            conn.call(store.PUT, store.PutParams(token, "stalled", "spool", "hung", owner=owner))
    except MfpsecError as exc:
        return exc.code.wire_name, time.monotonic() - started
    finally:
        os.close(r)
        os.close(w)
    return "stored", time.monotonic() - started


def _timed(fn: object, *args: object) -> float:
    started = time.monotonic()
    fn(*args)  # type: ignore[operator]
    return time.monotonic() - started


def test_stalled_uploads_freeze_no_one_and_end_with_a_timeout(short_tmp: Path, netlab: Lab) -> None:
    short_tmp.chmod(0o711)
    config = {
        **CONFIG,
        "transfers": {"idle_timeout_s": IDLE_S, "store_workers": 4, "store_per_owner": 2},
    }
    with ds.running(short_tmp / "d", config=config, tpm="none", board=dut_board(netlab)) as d:
        cli = Cli(d.socket_path, short_tmp / "rt")
        (cli.runtime / "").mkdir(exist_ok=True)
        cli.ok(0, "users", "init", "admin", "--password-file", "-", stdin=ADMIN_PW)
        cli.ok(0, "login", "-u", "admin", "--password-file", "-", stdin=ADMIN_PW)
        for name in OWNERS:
            cli.ok(
                0,
                "users",
                "add",
                name,
                "--role",
                "user",
                "--permanent",
                "--password-file",
                "-",
                stdin=USER_PW,
            )

        def status() -> None:
            assert json.loads(cli.ok(0, "status", "--json"))["state"]

        def login() -> None:
            cli.ok(ALICE_UID, "login", "-u", "alice", "--password-file", "-", stdin=USER_PW)

        def deny(cidr: str) -> None:
            r = ds.mfpsec(d.socket_path, "net", "deny", cidr)
            assert r.returncode == 0, r.stderr

        baseline = {
            "status": _timed(status),
            "login": _timed(login),
            "net deny": _timed(deny, "10.7.3.0/24"),
        }
        with concurrent.futures.ThreadPoolExecutor(len(OWNERS) * 2) as pool:
            stalled = [
                pool.submit(_stalled_put, d.socket_path, owner)
                for owner in OWNERS
                for _ in range(2)
            ]
            time.sleep(1.0)  # every upload is in: 4 hold the store's workers, 2 wait
            third, _ = _stalled_put(d.socket_path, "alice")
            during = {
                "status": _timed(status),
                "login": _timed(login),
                "net deny": _timed(deny, "10.7.4.0/24"),
            }
            # They answered while every stalled upload was still stalled.
            assert not any(f.done() for f in stalled)
            results = [f.result(timeout=60) for f in stalled]
        print(
            f"\nbaseline {baseline}\nduring 6 stalled uploads {during}\n"
            f"stalled uploads ended after {sorted(round(s, 1) for _, s in results)} s"
        )
        assert third == ErrorCode.BUSY.wire_name  # alice's share is taken
        assert {name for name, _ in results} == {ErrorCode.TRANSFER_TIMEOUT.wire_name}
        # The first four waited their inactivity timeout; the two queued ones theirs too.
        assert all(seconds >= IDLE_S for _, seconds in results)
        assert json.loads(cli.ok(0, "store", "status", "--json"))["objects"] == 0
        # The daemon serves uploads again at once.
        assert cli.ok(0, "store", "put", "-", "--job", "j", "--owner", "bob", stdin="after").strip()
        assert d.log().count("transfer_abandoned") == len(results)

        # The other way: a reader that stops reading (the pipe fills) is abandoned too.
        big = json.loads(
            cli.ok(
                0,
                "store",
                "put",
                "-",
                "--job",
                "big",
                "--owner",
                "bob",
                "--json",
                stdin="p" * (1 << 20),
            )
        )
        r, w = os.pipe()
        try:
            with Connection(d.socket_path, timeout=60) as conn, pytest.raises(MfpsecError) as exc:
                conn.call(store.READ, store.ReadParams(big["id"], conn.pass_descriptor(w)))
        finally:
            os.close(r)
            os.close(w)
        assert exc.value.code is ErrorCode.TRANSFER_TIMEOUT
        assert "no data for 3 s" in exc.value.params["reason"]
