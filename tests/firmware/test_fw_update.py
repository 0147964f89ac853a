"""The firmware service on real engines: A/B update from a bundle archive, boot
verification with fallback and trial attempts, commit and the anti-rollback counter in a
real TPM (swtpm), the PCR measurement, the rewrite lock, and malformed archives refused
before anything is written (F-1..F-4, B-1)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Subject
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.transfer import PolledReader
from mfpsecd.firmware import archive as fw_archive
from mfpsecd.firmware.model import manifest as fw_manifest
from mfpsecd.firmware.model import slots as fw_slots
from mfpsecd.firmware.service import BOOT_STATE
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.ports import Tpm
from tests.support.aio import sync
from tests.support.daemon import ROOT as ROOT_DIR
from tests.support.fakeclock import FakeClock
from tests.support.firmware_bundle import make_bundle, sign_tree
from tests.support.firmware_pki import (
    NOW,
    ROOT,
    make_cert,
    pem_of,
)
from tests.support.fw_update_stack import ENGINEER, PCR, Stack, stack
from tests.support.tpm import requires_swtpm, swtpm

ADMIN = Subject(origin="cli", user="admin", role="administrator")
E = ErrorCode


@pytest.fixture
def tpm_handle(tmp_path: Path) -> Iterator[Tpm]:
    if requires_swtpm.args[0]:
        pytest.skip(requires_swtpm.kwargs["reason"])
    with swtpm(tmp_path / "tpm") as handle:
        yield handle.backend()


def factory(s: Stack, epoch: int = 3) -> None:
    """Slot a as the factory wrote it."""
    archive = make_bundle(s.root / "src", "factory", epoch=epoch)
    with archive.open("rb") as f:
        (s.root / "slots").mkdir(exist_ok=True)
        fw_archive.extract(
            f,
            s.root / "slots" / "a",
            lambda raw, sig, pem, pq: fw_manifest.parse(raw),
            max_bytes=1 << 30,
        )


@pytest.mark.sfr("FPT_TUD_EXT.1")
@pytest.mark.spec("F-1", "F-4", "F-5")
@sync
async def test_update_boot_commit_and_counter_on_a_real_tpm(
    tmp_path: Path, tpm_handle: Tpm
) -> None:
    async with stack(tmp_path, tpm_handle) as s:
        factory(s)
        r = await s.fw.boot("enhanced")
        assert (r.result, r.slot, r.trial, r.epoch) == ("verified", "a", False, 3)
        # The manifest digest is extended into a fresh PCR: sha256(zeros || digest).
        assert r.pcr_value == hashlib.sha256(bytes(32) + bytes.fromhex(r.digest)).hexdigest()
        assert await s.tpm.pcr_read(PCR) == bytes.fromhex(r.pcr_value)
        await s.fw.start()
        assert await s.fw.counter() == 3  # raised from 1 to the committed slot's epoch

        (tmp_path / "src2").mkdir()
        slot = await s.update(make_bundle(tmp_path / "src2", "v5", epoch=5))
        assert slot == "b" and s.state() == fw_slots.BootState(active="a", pending="b", tries=3)
        assert await s.fw.counter() == 3  # not before the new slot booted and verified
        r = await s.fw.boot("enhanced")
        assert (r.result, r.slot, r.trial, r.version) == ("verified", "b", True, "2.5.0")
        await s.fw.start()  # the daemon came up on it: commit, then the counter
        assert s.state() == fw_slots.BootState(active="b")
        assert await s.fw.counter() == 5
        steps = [e["details"].get("step") for e in await s.events(EventType.FIRMWARE_UPDATE)]
        assert steps == ["counter", "write", "commit", "counter"]
        # The old slot a (epoch 3) can no longer boot: b damaged → nothing verifies.
        victim = s.fw.slot_path("b") / "tree" / "etc" / "version"
        victim.chmod(0o644)
        victim.write_text("patched\n")
        r = await s.fw.boot("enhanced")
        assert r.result == "failed" and r.error == "io.mfpsecd.Firmware.TreeMismatch"
        assert "slot a: io.mfpsecd.Firmware.Rollback(epoch=3, minimum=5)" in r.reason
        verdicts = [e["outcome"] for e in await s.events(EventType.FIRMWARE_VERIFY)]
        assert verdicts == ["success", "success", "failure"]


@sync
async def test_an_update_binds_the_keys_to_the_new_firmware_before_the_switch(
    tmp_path: Path, tpm_handle: Tpm
) -> None:
    """The key chain is bound to what the boot verification will measure for the new
    slot (the PCR before the measurement, extended with the manifest digest) before the
    slot is named for boot; if that fails, the slot is not named at all."""
    chains: list[KeyChain] = []

    async def bind(pcr: int, value: bytes, purpose: str) -> bool:
        return await chains[0].bind_next_boot(pcr, value, purpose)

    async with stack(tmp_path, tpm_handle, bind_next_boot=bind) as s:
        factory(s)
        shim = hashlib.sha256(b"what the boot loader measured first").digest()
        before = await s.tpm.pcr_extend(PCR, shim)
        assert before is not None
        r = await s.fw.boot("normal")
        assert r.pcr_before == before.hex()
        chain = KeyChain(
            s.db,
            s.tpm,
            NativeKeyCrypto(),
            FakeClock(NOW),
            HealthRegistry(FakeClock(NOW)),
            firmware_pcr=PCR,
        )
        chains.append(chain)
        await chain.start()
        await s.fw.start()
        (tmp_path / "src2").mkdir()
        archive = make_bundle(tmp_path / "src2", "v5", epoch=5)
        assert await s.update(archive) == "b"
        digest = bytes.fromhex((await s.events(EventType.FIRMWARE_UPDATE))[-1]["details"]["digest"])
        expected = hashlib.sha256(before + digest).digest()
        rows = await s.db.run(
            lambda c: c.execute(
                "SELECT pcr_values, purpose FROM key_bindings ORDER BY purpose"
            ).fetchall()
        )
        assert [tuple(r) for r in rows] == [
            (bytes.fromhex(r.pcr_value), "created"),
            (expected, f"update to 2.5.0 (manifest {digest.hex()[:16]})"),
        ]
        details = (await s.events(EventType.FIRMWARE_UPDATE))[-1]["details"]
        assert details["keys"] == f"bound to PCR 14 = {expected.hex()[:16]}"
        await chain.close()

    async def fails(pcr: int, value: bytes, purpose: str) -> bool:
        raise MfpsecError(ErrorCode.TPM_FAILED, command="Import", code="0x00000101")

    async with stack(tmp_path / "2", tpm_handle, bind_next_boot=fails) as s:
        factory(s)
        await s.fw.boot("normal")
        with pytest.raises(MfpsecError, match="TpmFailure"):
            await s.update(archive)
        assert s.state().pending is None  # written, never named for boot
        assert (await s.events(EventType.FIRMWARE_UPDATE))[-1]["outcome"] == "failure"


@sync
async def test_a_trial_that_does_not_verify_falls_back(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        factory(s)
        await s.update(make_bundle(tmp_path, "v4", epoch=4))
        (s.fw.slot_path("b") / "tree" / "etc" / "extra").write_text("implant")
        r = await s.fw.boot("normal")
        assert (r.result, r.slot, r.trial) == ("verified", "a", False)
        assert "slot b: io.mfpsecd.Firmware.TreeMismatch" in r.reason
        st = s.state()
        assert (st.active, st.pending, st.failed) == ("a", None, "b")
        await s.fw.start()
        assert await s.fw.counter() == 3  # never raised for a slot that did not verify


@sync
async def test_a_trial_that_never_comes_up_runs_out_of_attempts(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        factory(s)
        await s.update(make_bundle(tmp_path, "v4", epoch=4))
        for left in (2, 1, 0):  # each boot spends one attempt; the daemon never commits
            r = await s.fw.boot("normal")
            assert (r.slot, r.trial, s.state().tries) == ("b", True, left)
        r = await s.fw.boot("normal")
        assert (r.slot, r.trial) == ("a", False)
        assert (s.state().failed, s.state().reason) == ("b", "ran out of boot attempts")


@pytest.mark.sfr("FPT_TUD_EXT.1")
@pytest.mark.spec("F-1", "F-4", "F-5")
@sync
async def test_refusals_write_nothing_and_are_audited(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        factory(s, epoch=3)
        await s.fw.boot("normal")
        await s.fw.start()
        before = sorted(p.name for p in (tmp_path / "slots").iterdir())
        stranger = ec.generate_private_key(ec.SECP384R1())
        untrusted_root = ec.generate_private_key(ec.SECP384R1())
        stranger_cert = pem_of(
            make_cert("stranger", stranger, "other root", untrusted_root, ca=False)
        )
        cases = [
            (make_bundle(tmp_path / "r1", "old", epoch=2), E.FIRMWARE_ROLLBACK),
            (make_bundle(tmp_path / "r2", "other", epoch=4, models=["X1"]), E.FIRMWARE_WRONG_MODEL),
            (
                make_bundle(tmp_path / "r3", "forged", epoch=4, key=stranger, cert=stranger_cert),
                E.FIRMWARE_SIGNATURE_INVALID,
            ),
        ]
        for archive, code in cases:
            with pytest.raises(MfpsecError) as info:
                await s.update(archive)
            assert info.value.code is code
        assert sorted(p.name for p in (tmp_path / "slots").iterdir()) == before
        assert s.state().pending is None
        outcomes = [
            (e["outcome"], e["details"].get("error"))
            for e in await s.events(EventType.FIRMWARE_UPDATE)
            if e["details"].get("step") == "write"
        ]
        assert outcomes == [("failure", c.wire_name) for _, c in cases]


@sync
async def test_a_stalled_archive_releases_the_update(tmp_path: Path) -> None:
    """An archive fed from a pipe that stops half way: the update ends with
    TransferTimeout once nothing came for the inactivity timeout, the slot is not named
    for boot, and the next update is not told one is in progress."""
    async with stack(tmp_path) as s:
        factory(s)
        archive = make_bundle(tmp_path / "src", "v5", epoch=5).read_bytes()
        r, w = os.pipe()
        os.set_blocking(w, False)
        os.write(w, archive[:4096])  # then nothing, and the writer stays open
        reader = PolledReader(r)
        with io.BufferedReader(reader, 1 << 20) as source:
            update = asyncio.ensure_future(s.fw.update(source, ENGINEER, reader))
            clock = s.fw._clock
            assert isinstance(clock, FakeClock)
            while not update.done():  # the fake clock: the watchdog's ticks
                await asyncio.sleep(0.05)
                await clock.advance(1)
            with pytest.raises(MfpsecError) as exc:
                await update
        os.close(r)
        os.close(w)
        assert exc.value.code is ErrorCode.TRANSFER_TIMEOUT
        assert "no data for 30 s (firmware archive, 4096 bytes moved)" in str(exc.value)
        assert s.state().pending is None
        (tmp_path / "src2").mkdir()
        assert await s.update(make_bundle(tmp_path / "src2", "v6", epoch=6)) == "b"


@pytest.mark.sfr("FMT_MOF.1")
@pytest.mark.spec("A-10", "F-3", "N-1")
@sync
async def test_the_administrators_lock_stops_every_update(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        factory(s)
        archive = make_bundle(tmp_path, "v4", epoch=4)
        await s.fw.set_lock(True, ADMIN)
        with pytest.raises(MfpsecError) as info:
            await s.update(archive, ENGINEER)
        assert info.value.code is E.FIRMWARE_REWRITE_PROHIBITED
        assert info.value.params["since"] == "2026-11-22T00:00:00.000Z"
        assert not s.fw.slot_path("b").exists() and s.state().pending is None
        await s.fw.set_lock(False, ADMIN)
        assert await s.update(archive, ENGINEER) == "b"

        # Staged before the lock, not booted yet: the lock discards it. It never boots,
        # is never committed, and the anti-rollback counter stays where it was.
        assert s.state().pending == "b"
        await s.fw.set_lock(True, ADMIN)
        assert s.state().pending is None
        record = await s.fw.boot("enhanced")
        assert (record.slot, record.trial) == ("a", False)
        await s.fw.start()
        # Raised to a's epoch (3) at the commit of a, never to b's (4).
        assert await s.fw.counter() == 3 and s.state().active == "a"
        lock_events = [
            e["details"]
            for e in await s.events(EventType.FIRMWARE_UPDATE)
            if e["details"].get("step") == "lock"
        ]
        assert lock_events[-1]["discarded"] == "b"


def _archive(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    out.seek(0)
    return out


def _members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    with tarfile.open(archive) as tar:
        for info in tar:
            f = tar.extractfile(info) if info.isreg() else None
            out.append((info, None if f is None else f.read()))
    return out


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _mutations(
    good: list[tuple[tarfile.TarInfo, bytes | None]],
) -> Iterator[tuple[str, list[tuple[tarfile.TarInfo, bytes | None]]]]:
    header, rest = good[:3], good[3:]
    yield "signature first", [header[1], header[0], header[2], *rest]
    yield "a member the manifest lacks", [*good, _file("tree/etc/implant", b"x")]
    yield "a member listed twice", [*good, good[-1]]
    yield "a member missing", good[:-1]
    escape = _file("tree/../../escaped", b"x")
    yield "a path leaving the tree", [*good, escape]
    link = tarfile.TarInfo("tree/bin/f0")
    link.type, link.linkname = tarfile.LNKTYPE, "tree/bin/f4"
    yield "a hard link", [m for m in good if m[0].name != "tree/bin/f0"] + [(link, None)]
    fifo = tarfile.TarInfo("tree/bin/f0")
    fifo.type = tarfile.FIFOTYPE
    yield "a fifo", [m for m in good if m[0].name != "tree/bin/f0"] + [(fifo, None)]
    grown = [(i, d) for i, d in good]
    idx = next(
        k for k, (i, d) in enumerate(grown) if i.isreg() and d and i.name.startswith("tree/")
    )
    info, data = grown[idx]
    grown[idx] = _file(info.name, (data or b"") + b"!")
    yield "a file longer than listed", grown
    linked = [(i, d) for i, d in good]
    for k, (i, _d) in enumerate(linked):
        if i.issym():
            j = tarfile.TarInfo(i.name)
            j.type, j.linkname = tarfile.SYMTYPE, "/etc/shadow"
            linked[k] = (j, None)
    yield "a link retargeted", linked


@sync
async def test_malformed_archives_are_refused_before_a_slot_is_written(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        factory(s)
        good = _members(make_bundle(tmp_path, "v4", epoch=4))
        count = 0
        for what, members in _mutations(good):
            with pytest.raises(MfpsecError) as info:
                await s.fw.update(_archive(members), ENGINEER)
            assert info.value.code in (E.FIRMWARE_BUNDLE_INVALID, E.FIRMWARE_SIGNATURE_INVALID), (
                what
            )
            assert not s.fw.slot_path("b").exists(), what
            assert not (tmp_path / "escaped").exists()
            count += 1
        with pytest.raises(MfpsecError) as info:
            await s.fw.update(io.BytesIO(b"not a tar at all" * 64), ENGINEER)
        assert info.value.code is E.FIRMWARE_BUNDLE_INVALID
        truncated = _archive(good).getvalue()
        # Cut anywhere, inside a member's data too (stream mode reads it only when it
        # is copied): BundleInvalid with the reason, never Internal.
        with tarfile.open(fileobj=io.BytesIO(truncated)) as whole:
            data_end = max(m.offset_data + m.size for m in whole.getmembers())
        for cut in range(512, data_end, 1531):  # (beyond: only the end-of-archive padding)
            with pytest.raises(MfpsecError) as info:
                await s.fw.update(io.BytesIO(truncated[:cut]), ENGINEER)
            assert info.value.code is E.FIRMWARE_BUNDLE_INVALID, cut
            assert not s.fw.slot_path("b").exists()
        assert count == 9
        # The untouched archive still installs.
        assert (await s.fw.update(_archive(good), ENGINEER)).slot == "b"
        assert not any(p.name.endswith(".incoming") for p in (tmp_path / "slots").iterdir())


@sync
async def test_a_corrupt_boot_state_boots_whatever_verifies(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        factory(s)
        (tmp_path / "slots" / BOOT_STATE).write_text('{"active": "c"}')
        r = await s.fw.boot("enhanced")
        assert (r.result, r.slot) == ("verified", "a")


def _big_bundle(root: Path, epoch: int) -> Path:
    """About 48 MiB in 200 files: an update long enough to be cut at every step."""
    bundle = root / "big"
    rng = random.Random(5)
    for i in range(200):
        path = bundle / "tree" / f"d{i % 10}" / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.choice([4096, 65536, 480 << 10])))
    sign_tree(bundle, epoch=epoch)
    archive = root / "big.mfw"
    with archive.open("wb") as f:
        fw_archive.write_archive(bundle, f)
    return archive


def _where(slots: Path, target: str, pending: str | None) -> str:
    """Which step the cut landed in, from what is on disk."""
    if (slots / f"{target}.incoming").exists():
        return "reading and verifying"
    if (slots / f"{target}.old").exists() or not (slots / target).exists():
        return "replacing the slot"
    return "named for the next boot" if pending == target else "before writing"


def test_sigkill_at_any_step_of_an_update_leaves_a_verified_slot(tmp_path: Path) -> None:
    root = tmp_path / "dev"
    root.mkdir()
    archive = _big_bundle(tmp_path, epoch=4)

    async def boot_and_start() -> str:
        async with stack(root) as s:
            r = await s.fw.boot("enhanced")
            assert r.result == "verified", r.reason  # a bootable, verified slot
            await s.fw.start()  # the daemon: commits a trial, tidies leftovers
            return r.slot

    async def stored_state() -> fw_slots.BootState:
        async with stack(root) as s:
            return s.state()

    async def prepare() -> fw_slots.BootState:
        async with stack(root) as s:
            factory(s)
            return s.state()

    def run_update(kill_after: float | None) -> float:
        p = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fw_update_crash", str(root), str(archive)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT_DIR,
        )
        out = p.stdout
        assert out is not None

        def expect(word: str) -> list[str]:  # the driver's own lines among its logs
            for line in out:
                if line.split()[:1] == [word]:
                    return line.split()
            raise AssertionError(f"the driver ended before {word!r}")

        expect("ready")
        if kill_after is None:
            seconds = float(expect("done")[1])
            assert p.wait(timeout=60) == 0
            return seconds
        time.sleep(kill_after)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        return 0.0

    (root / "root.pem").write_bytes(pem_of(ROOT))  # the driver is another process
    asyncio.run(prepare())
    asyncio.run(boot_and_start())
    duration = run_update(None)  # one uncut run: how long the steps take here
    asyncio.run(boot_and_start())  # slot b committed; the next update writes a
    rng = random.Random(11)
    seen: dict[str, int] = {}
    booted: set[str] = set()
    for _ in range(20):
        before = asyncio.run(stored_state())
        target = fw_slots.update_target(before)
        run_update(rng.uniform(0.0, duration * 1.5))
        after = asyncio.run(stored_state())
        step = _where(root / "slots", target, after.pending)
        seen[step] = seen.get(step, 0) + 1
        slot = asyncio.run(boot_and_start())
        booted.add(slot)
        assert not any(p.name.endswith((".incoming", ".old")) for p in (root / "slots").iterdir())
    print(f"update {duration:.2f} s uncut; cuts by step: {seen}; booted {sorted(booted)}")
    assert {"reading and verifying", "named for the next boot"} <= seen.keys(), seen
    assert booted == {"a", "b"}  # completed updates were tried, cut ones never
