"""The wrapping key bound to the measured firmware (K-1, F-4), against a real swtpm: it
opens only on the firmware measurement it is bound to, an update binds it to the next
firmware before the switch (and keeps the fallback's), a chain from before binding is
bound at its first measured start, a forged binding row opens nothing, and a backup
restores onto a new TPM bound to the running firmware.

Each `power_on` is a power cycle: a swtpm restarted on the same state starts with its
PCRs at zero, and PCR 14 is extended as the boot verification would.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mfpsecd.base.errors import ErrorCode
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.chain import ChainState
from mfpsecd.keys.model.pcr_policy import extended
from tests.support.keychain_stack import (
    FAST,
    Stack,
    assert_all_readable,
    expect,
    open_stack,
    put_all,
)
from tests.support.tpm import LegacyTpm, requires_swtpm, swtpm

pytestmark = requires_swtpm

PCR = 14
FIRMWARE_1 = hashlib.sha256(b"manifest 1.0").digest()
FIRMWARE_2 = hashlib.sha256(b"manifest 2.0").digest()
ZERO = bytes(32)


def power_on(
    state: Path, measured: bytes | None, scenario: Callable[[Stack], Awaitable[None]], **stack: Any
) -> None:
    """One power cycle: the boot verification measures `measured` into PCR 14 (None: it
    did not run), then the chain starts, bound to PCR 14, and `scenario` runs."""
    with swtpm(state / "tpm") as tpm:

        async def boot() -> None:
            if measured is not None:
                verifier = tpm.backend()
                await verifier.open()
                await verifier.pcr_extend(PCR, measured)
                await verifier.close()
            s = await open_stack(state, tpm, firmware_pcr=PCR, **stack)
            try:
                await scenario(s)
            finally:
                await s.close()

        asyncio.run(boot())


def bound_to(digest: bytes) -> str:
    return f"PCR 14 = {extended(ZERO, digest).hex()[:16]}…"


async def _locked(s: Stack, why: str) -> None:
    assert s.chain.state is ChainState.LOCKED
    assert why in (await s.chain.facts()).reason
    with expect(ErrorCode.KEYS_UNAVAILABLE):
        await s.secrets.get("admin-password")


@pytest.mark.sfr("FCS_KYC_EXT.1")
@pytest.mark.spec("K-1", "K-2")
def test_keys_open_only_on_the_firmware_they_are_bound_to(tmp_path: Path) -> None:
    unmeasured = "no firmware was measured into PCR 14"
    # A first power-on that measured nothing provisions nothing, and says why.
    power_on(tmp_path, None, lambda s: _locked(s, unmeasured))
    (tmp_path / "state.sqlite3").unlink()

    async def provision(s: Stack) -> None:
        assert (await s.chain.facts()).bound_to == bound_to(FIRMWARE_1)
        await put_all(s)

    power_on(tmp_path, FIRMWARE_1, provision)
    power_on(tmp_path, None, lambda s: _locked(s, unmeasured))
    power_on(
        tmp_path,
        FIRMWARE_2,
        lambda s: _locked(
            s,
            f"this boot measured {bound_to(FIRMWARE_2)}, the keys are bound to "
            f"{bound_to(FIRMWARE_1)}",
        ),
    )
    power_on(tmp_path, FIRMWARE_1, assert_all_readable)


def _bindings(state: Path) -> list[tuple[bytes, str]]:
    with sqlite3.connect(state / "state.sqlite3") as conn:
        return sorted(conn.execute("SELECT pcr_values, purpose FROM key_bindings").fetchall())


def test_an_update_binds_the_next_firmware_and_keeps_the_fallback(tmp_path: Path) -> None:
    async def update(s: Stack) -> None:
        await put_all(s)
        assert await s.chain.bind_next_boot(PCR, extended(ZERO, FIRMWARE_2), "update to 2.0")
        assert not await s.chain.bind_next_boot(7, ZERO, "not a bound PCR")

    power_on(tmp_path, FIRMWARE_1, update)
    assert {p for _, p in _bindings(tmp_path)} == {"created", "update to 2.0"}
    # The new firmware boots and opens the keys; so does the old one (the fallback slot
    # after a failed trial).
    power_on(tmp_path, FIRMWARE_2, assert_all_readable)
    power_on(tmp_path, FIRMWARE_1, assert_all_readable)

    # The next update, from firmware 2: its binding and the new one stay, 1.0's goes.
    firmware_3 = hashlib.sha256(b"manifest 3.0").digest()

    async def again(s: Stack) -> None:
        assert await s.chain.bind_next_boot(PCR, extended(ZERO, firmware_3), "update to 3.0")

    power_on(tmp_path, FIRMWARE_2, again)
    assert [v for v, _ in _bindings(tmp_path)] == sorted(
        [extended(ZERO, FIRMWARE_2), extended(ZERO, firmware_3)]
    )
    power_on(tmp_path, firmware_3, assert_all_readable)


def test_a_chain_from_before_binding_is_bound_at_its_first_measured_start(tmp_path: Path) -> None:
    with swtpm(tmp_path / "tpm") as tpm:

        async def provision() -> None:
            s = await open_stack(tmp_path, tpm, backend=LegacyTpm(tpm.tcti, "swtpm"))
            await put_all(s)
            await s.close()

        asyncio.run(provision())
    db = tmp_path / "state.sqlite3"
    with sqlite3.connect(db) as conn:  # the rows as schema 13 laid them out
        public, private = conn.execute("SELECT public, private FROM key_bindings").fetchone()
        conn.execute(
            "UPDATE tpm_keys SET public = ?, private = ? WHERE role = 'wrapping'", (public, private)
        )
        conn.execute("DELETE FROM key_bindings")

    async def unbound(s: Stack) -> None:
        # Not measured: left as it was (bound to an empty PCR it would protect nothing).
        await assert_all_readable(s)
        assert (await s.chain.facts()).bound_to == ""

    async def bound(s: Stack) -> None:
        await assert_all_readable(s)
        assert (await s.chain.facts()).bound_to == bound_to(FIRMWARE_1)

    power_on(tmp_path, None, unbound)
    power_on(tmp_path, FIRMWARE_1, bound)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT private FROM tpm_keys WHERE role = 'wrapping'").fetchone() == (
            b"",
        )
    assert [p for _, p in _bindings(tmp_path)] == ["bound at start (key from before PCR binding)"]
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite3*"))
    assert private not in on_disk  # the blob its empty auth value opened is gone
    power_on(tmp_path, FIRMWARE_2, lambda s: _locked(s, "this boot measured"))


def test_a_forged_binding_row_opens_nothing(tmp_path: Path) -> None:
    """Someone with the disk rewrites the row's PCR values to what other firmware
    measures: the chain picks that row, but the TPM holds the key to the policy it was
    created with."""
    power_on(tmp_path, FIRMWARE_1, put_all)
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        conn.execute("UPDATE key_bindings SET pcr_values = ?", (extended(ZERO, FIRMWARE_2),))

    async def forged(s: Stack) -> None:
        assert s.chain.state is ChainState.LOCKED
        with expect(ErrorCode.KEY_INTEGRITY) as refused:
            await s.secrets.get("admin-password")
        assert refused.value.params["object"] == "wrapping key binding"

    power_on(tmp_path, FIRMWARE_2, forged)


def test_a_backup_restores_onto_a_new_tpm_bound_to_the_running_firmware(tmp_path: Path) -> None:
    """The backup holds the key, not its binding: made before an update, it restores
    after it, bound to what this boot measured; never onto an unmeasured boot."""
    usb = tmp_path / "usb"
    usb.mkdir()
    passphrase = b"Backup-passphrase-2026!"
    backup: list[Path] = []

    async def make_backup(s: Stack) -> None:
        await put_all(s)
        backup.append((await s.chain.backup(SecretBytes(bytearray(passphrase)), usb)).path)
        assert await s.chain.bind_next_boot(PCR, extended(ZERO, FIRMWARE_2), "update")

    async def unmeasured(s: Stack) -> None:
        with expect(ErrorCode.KEYS_UNAVAILABLE):
            await s.chain.restore(SecretBytes(bytearray(passphrase)), backup[0])
        assert s.chain.state is ChainState.LOCKED

    async def restore(s: Stack) -> None:
        assert s.chain.state is ChainState.LOCKED
        await s.chain.restore(SecretBytes(bytearray(passphrase)), backup[0])
        await assert_all_readable(s)
        assert (await s.chain.facts()).bound_to == bound_to(FIRMWARE_2)

    power_on(tmp_path, FIRMWARE_1, make_backup, backup_cost=FAST)
    shutil.rmtree(tmp_path / "tpm")  # the TPM is replaced
    power_on(tmp_path, None, unmeasured, backup_cost=FAST)
    power_on(tmp_path, FIRMWARE_2, restore, backup_cost=FAST)
    # The bindings made on the old TPM cannot load on this one: gone.
    assert [p for _, p in _bindings(tmp_path)] == ["restored from backup"]
    power_on(tmp_path, FIRMWARE_2, assert_all_readable)
