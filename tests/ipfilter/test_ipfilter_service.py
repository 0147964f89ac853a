"""The IP filter on a real kernel, in throwaway network namespaces with real TCP and UDP
traffic: a matrix of sources (inside and outside the quick range, IPv4 and IPv6,
permitted and refused ranges) by ports (on and off) under several policies, checked
against the model 100%; the quick filter following an address change within a second;
1,000 replacements while a refused and a permitted source keep connecting; a failing
transaction that leaves the old rules; refused-connection summaries in the audit log."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.auth.model.throttle import Throttle, ThrottleLimits
from mfpsecd.base.addresses import Range, parse_range
from mfpsecd.base.clock import SystemClock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.ipfilter import service as svc
from mfpsecd.ipfilter.backends.nftables_filter import NftablesFilter
from mfpsecd.ipfilter.backends.rtnetlink import RtnetlinkAddresses
from mfpsecd.ipfilter.flood_bans import BanPolicy, FloodBans
from mfpsecd.ipfilter.model import ruleset as nf
from tests.support.aio import sync
from tests.support.netlab import (
    SOURCES,
    TCP_PORTS,
    UDP_PORTS,
    Lab,
    Probe,
    lab,
    requires_netns,
    sh,
)

pytestmark = requires_netns
ADMIN = Subject(origin="cli", user="admin", role="administrator")
R = parse_range


@dataclass
class Stack:
    net: svc.NetfilterService
    filt: CountingFilter
    auditor: Auditor
    lab: Lab

    async def set(self, policy: nf.Policy, **kwargs: Any) -> svc.NetView:
        return await self.net.change("test", lambda _: policy, ADMIN, **kwargs)

    async def check_matrix(self, policy: nf.Policy) -> int:
        view = await self.set(policy)
        probes = [Probe(str(s), "tcp", p) for s in SOURCES for p in TCP_PORTS] + [
            Probe(str(s), "udp", p) for s in SOURCES for p in UDP_PORTS
        ]
        got = await asyncio.to_thread(self.lab.probe, probes)
        for probe, outcome in zip(probes, got, strict=True):
            expected = nf.decide(
                policy,
                view.services,
                view.device,
                ipaddress.ip_address(probe.source),
                proto=probe.proto,  # type: ignore[arg-type]
                port=probe.port,
            )
            assert outcome == expected, (policy, probe, outcome)
        return sum(got)

    async def events(self, type_: EventType) -> list[dict[str, Any]]:
        records = await self.auditor.query(AuditQuery(types=frozenset({type_})))
        return [msgspec.to_builtins(r) for r in records]


class CountingFilter(NftablesFilter):
    """The real filter; it also notes how many commands each whole-table transaction
    carried, and how many intervals each element swap took out and put in."""

    def __init__(self, netns: str | None) -> None:
        super().__init__(netns)
        self.batches: list[int] = []
        self.swaps: list[tuple[int, int]] = []

    async def apply(self, commands: list[dict[str, Any]]) -> None:
        self.batches.append(len(commands))
        await super().apply(commands)

    async def swap_intervals(
        self, swaps: Sequence[tuple[str, Sequence[Range], Sequence[Range]]]
    ) -> bool:
        self.swaps += [(len(gone), len(new)) for _, gone, new in swaps]
        return await super().swap_intervals(swaps)


@asynccontextmanager
async def stack(tmp: Path, lab_: Lab, summary_s: float = 3600.0) -> AsyncIterator[Stack]:
    clock = SystemClock()
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    health = HealthRegistry(clock)
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    filt = CountingFilter(lab_.dut)
    net = svc.NetfilterService(
        state,
        filt,
        RtnetlinkAddresses(lab_.dut, ("lan0",)),
        auditor=auditor,
        clock=clock,
        health=health,
        settings=svc.NetSettings(
            nf.DEFAULT_SERVICES,
            ("lan0",),
            ("wlan0",),
            tmp / "netfilter.json",
            summary_interval_s=summary_s,
        ),
    )
    try:
        await net.start()
        yield Stack(net, filt, auditor, lab_)
    finally:
        net.close()
        await auditor.stop()
        await state.close()


@pytest.fixture(scope="module")
def netlab() -> Any:
    with lab() as lab_:
        yield lab_


ON = frozenset({"http", "raw", "snmp"})  # ipp (631) stays off


@sync
async def test_a_matrix_of_sources_and_ports_matches_the_model(tmp_path: Path, netlab: Lab) -> None:
    async with stack(tmp_path, netlab) as s:
        policies = [
            nf.Policy(enabled=ON),
            nf.Policy(deny=(R("10.7.3.0/24"), R("2001:db8:7:3::/64")), enabled=ON),
            nf.Policy(
                allow=(R("10.7.1.0/24"), R("10.7.4.40-10.7.4.60"), R("2001:db8:7:4::/64")),
                enabled=ON | {"ipp"},
            ),
            nf.Policy(quick=True, enabled=ON),
            nf.Policy(
                quick=True, deny=(R("10.7.1.50"),), allow=(R("2001:db8:7::/48"),), enabled=ON
            ),
            nf.Policy(),  # every port off
        ]
        passed = [await s.check_matrix(p) for p in policies]
        # Not a vacuous agreement: each policy let some probes through and not others.
        assert passed[0] == 24 and min(passed[1:5]) > 0 and max(passed[1:5]) < 32
        assert passed[-1] == 0
        assert json.loads((tmp_path / "netfilter.json").read_text())["nftables"][0] == {
            "add": {"table": {"family": "inet", "name": "mfpsecd"}}
        }


@sync
async def test_the_quick_filter_follows_an_address_change(tmp_path: Path, netlab: Lab) -> None:
    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(quick=True, enabled=ON))
        runner = asyncio.create_task(s.net.run())
        inside, outside = Probe("10.7.1.50", "tcp", 80), Probe("10.7.2.50", "tcp", 80)
        v6_out = Probe("2001:db8:7:2::50", "tcp", 80)
        try:
            assert await asyncio.to_thread(netlab.probe, [inside, outside, v6_out]) == [
                True,
                False,
                False,
            ]
            netlab.in_dut("ip", "addr", "add", "10.7.2.1/16", "dev", "lan0")
            netlab.in_dut("ip", "addr", "add", "2001:db8:7:2::1/48", "dev", "lan0", "nodad")
            t0 = time.monotonic()
            while not all(await asyncio.to_thread(netlab.probe, [outside, v6_out], 0.2)):
                assert time.monotonic() - t0 < 1.0, "the quick filter did not follow"
            followed = time.monotonic() - t0
            netlab.in_dut("ip", "addr", "del", "10.7.1.1/16", "dev", "lan0")
            t0 = time.monotonic()
            moved = [
                Probe("10.7.1.50", "tcp", 80, "10.7.2.1"),
                Probe("10.7.2.50", "tcp", 80, "10.7.2.1"),
            ]
            while await asyncio.to_thread(netlab.probe, moved, 0.2) != [False, True]:
                assert time.monotonic() - t0 < 1.0, "the quick filter did not follow"
            print(f"quick filter followed an added address within {followed:.2f} s")
            steps = [e["details"].get("step") for e in await s.events(EventType.NETFILTER_CHANGE)]
            assert steps.count("addresses") >= 2
        finally:
            runner.cancel()
            netlab.in_dut("ip", "addr", "add", "10.7.1.1/16", "dev", "lan0", check=False)
            netlab.in_dut("ip", "addr", "del", "10.7.2.1/16", "dev", "lan0", check=False)
            netlab.in_dut("ip", "addr", "del", "2001:db8:7:2::1/48", "dev", "lan0", check=False)


@sync
async def test_replacements_are_atomic_and_a_failed_one_changes_nothing(
    tmp_path: Path, netlab: Lab
) -> None:
    async with stack(tmp_path, netlab) as s:
        base = nf.Policy(deny=(R("10.7.3.0/24"),), enabled=ON)
        await s.set(base)
        refused = netlab.prober("10.7.3.50", 80, timeout=0.05)
        permitted = netlab.prober("10.7.2.50", 80, timeout=1.0)
        try:
            for i in range(1000):  # each one replaces the whole table
                extra = (R(f"192.0.2.{i % 250}"),) if i % 2 else (R(f"198.51.100.{i % 250}"),)
                await s.set(nf.Policy(deny=(R("10.7.3.0/24"), *extra), enabled=ON))
        finally:
            counts = [json.loads(p.communicate("", timeout=30)[0]) for p in (refused, permitted)]
        assert counts[0]["ok"] == 0 and counts[0]["refused"] > 10, counts
        assert counts[1]["refused"] == 0 and counts[1]["ok"] > 100, counts
        print(f"1000 replacements; refused source {counts[0]}, permitted {counts[1]}")

        def rules(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            # The counting sets tick on their own (expiry timers, late retransmissions).
            return [i for i in items if not i.get("set", {}).get("name", "").startswith("refused")]

        before = rules(await s.filt.ruleset())
        broken = [
            *nf.compile_ruleset(
                nf.Policy(enabled=frozenset({"ipp"})),
                nf.DEFAULT_SERVICES,
                s.net._device,
                new_table=False,
            ),
            {
                "add": {
                    "rule": {
                        "family": "inet",
                        "table": "mfpsecd",
                        "chain": "nowhere",
                        "expr": [{"accept": None}],
                    }
                }
            },
        ]
        with pytest.raises(MfpsecError) as info:
            await s.filt.apply(broken)
        assert info.value.code is ErrorCode.NETWORK_APPLY_FAILED
        assert rules(await s.filt.ruleset()) == before
        assert await asyncio.to_thread(
            netlab.probe, [Probe("10.7.2.50", "tcp", 80), Probe("10.7.3.50", "tcp", 80)]
        ) == [True, False]


@sync
async def test_refusals_and_lockout_protection(tmp_path: Path, netlab: Lab) -> None:
    async with stack(tmp_path, netlab, summary_s=0.0) as s:
        await s.set(nf.Policy(deny=(R("10.7.3.0/24"),), enabled=ON))
        await asyncio.to_thread(
            netlab.probe,
            [Probe("10.7.3.50", "tcp", 80)] * 3 + [Probe("10.7.2.50", "tcp", 631)],
            0.2,
        )
        await s.net.summarise_refused()
        summary = (await s.events(EventType.NETFILTER_REFUSED))[-1]["details"]
        assert summary["sources"] == 2 and "10.7.3.50 (" in summary["top"]
        await s.net.summarise_refused()  # nothing new: no record
        assert len(await s.events(EventType.NETFILTER_REFUSED)) == 1

        for bad, why in (
            ("10.7.0.1/8", "host bits"),
            ("10.0.0.9-10.0.0.1", "after"),
            ("10.0.0.1-2001:db8::1", "both ends"),
        ):
            with pytest.raises(MfpsecError) as info:
                await s.net.edit_range("deny", bad, ADMIN)
            assert info.value.code is ErrorCode.NETWORK_RULES_INVALID and why in str(
                info.value.params["reason"]
            )
        with pytest.raises(MfpsecError) as info:
            await s.net.change("port", svc.port("telnet", True), ADMIN)
        assert "unknown service 'telnet'" in str(info.value.params["reason"])
        # An administrator on 10.7.2.50 refusing their own network needs to confirm.
        with pytest.raises(MfpsecError) as info:
            await s.net.edit_range("deny", "10.7.2.0/24", ADMIN, remote_address="10.7.2.50")
        assert info.value.code is ErrorCode.NETWORK_WOULD_LOCK_OUT
        assert (await s.net.view()).policy.deny == (R("10.7.3.0/24"),)
        view = await s.net.edit_range(
            "deny", "10.7.2.0/24", ADMIN, remote_address="10.7.2.50", confirm=True
        )
        assert R("10.7.2.0/24") in view.policy.deny
        outcomes = [
            (e["details"]["change"], e["outcome"], e["details"].get("error"))
            for e in await s.events(EventType.NETFILTER_CHANGE)
            if e["details"].get("change") == "deny 10.7.2.0/24"
        ]
        assert outcomes[-2:] == [
            ("deny 10.7.2.0/24", "failure", "io.mfpsecd.Network.WouldLockOut"),
            ("deny 10.7.2.0/24", "success", None),
        ]


@sync
async def test_without_the_python_binding_nft_applies_the_same_json(
    netlab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfpsecd.ipfilter.backends import nftables_filter

    monkeypatch.setattr(nftables_filter, "_library", lambda: None)
    filt = NftablesFilter(netlab.dut)
    try:
        policy = nf.Policy(deny=(R("10.7.4.0/24"),), enabled=ON)
        await filt.apply(
            nf.compile_ruleset(policy, nf.DEFAULT_SERVICES, nf.Device(("lan0",), ()), recreate=True)
        )
        assert filt.via == "nft -j -f -" and await filt.present()
        assert await asyncio.to_thread(
            netlab.probe, [Probe("10.7.4.50", "tcp", 80), Probe("10.7.2.50", "tcp", 80)]
        ) == [False, True]
    finally:
        filt.close()


@pytest.mark.sfr("FPT_FDI_EXP.1")
@pytest.mark.spec("N-4")
@sync
async def test_no_forwarding_between_wired_and_wireless() -> None:
    """N-4 with real traffic: a client on the wired side and one on the wireless side of
    the device, which forwards between them until the filter is loaded."""
    tag = secrets.token_hex(3)
    dev, wired, wireless = f"mfpr{tag}", f"mfpw{tag}", f"mfpl{tag}"
    names = (dev, wired, wireless)
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for side, ifname, net in ((wired, "lan0", "10.8.1"), (wireless, "wlan0", "10.8.2")):
            sh(
                "ip",
                "link",
                "add",
                f"a{tag}{ifname[0]}",
                "netns",
                dev,
                "type",
                "veth",
                "peer",
                "name",
                f"b{tag}{ifname[0]}",
                "netns",
                side,
            )
            sh("ip", "-n", dev, "link", "set", f"a{tag}{ifname[0]}", "name", ifname)
            sh("ip", "-n", dev, "addr", "add", f"{net}.1/24", "dev", ifname)
            sh("ip", "-n", dev, "link", "set", ifname, "up")
            sh("ip", "-n", side, "addr", "add", f"{net}.2/24", "dev", f"b{tag}{ifname[0]}")
            sh("ip", "-n", side, "link", "set", f"b{tag}{ifname[0]}", "up")
            sh("ip", "-n", side, "route", "add", "default", "via", f"{net}.1")
        sh("ip", "netns", "exec", dev, "sysctl", "-qw", "net.ipv4.ip_forward=1")

        def ping() -> bool:
            return (
                sh(
                    "ip", "netns", "exec", wired, "ping", "-c1", "-W1", "10.8.2.2", check=False
                ).returncode
                == 0
            )

        assert ping()  # the device routes between its sides...
        filt = NftablesFilter(dev)
        try:
            await filt.apply(
                nf.compile_ruleset(
                    nf.Policy(enabled=ON), nf.DEFAULT_SERVICES, nf.Device(("lan0",), ("wlan0",))
                )
            )
        finally:
            filt.close()
        assert not ping()  # ... and not once the filter is loaded
        counters = sh(
            "ip", "netns", "exec", dev, "nft", "list", "chain", "inet", "mfpsecd", "forward"
        ).stdout
        assert 'iifname "lan0" oifname "wlan0" counter packets 1' in counters
    finally:
        for ns in names:
            sh("ip", "netns", "del", ns, check=False)


def _kernel_set(lab_: Lab, name: str) -> list[Any]:
    out = sh(
        "ip", "netns", "exec", lab_.dut, "nft", "-j", "list", "set", "inet", nf.TABLE, name
    ).stdout
    listed = next(x["set"] for x in json.loads(out)["nftables"] if "set" in x)
    return list(listed.get("elem", []))


def _many(count: int, first: str = "10.200.0.0") -> tuple[Range, ...]:
    base = int(ipaddress.ip_address(first))
    return tuple(Range(4, base + 4 * i, base + 4 * i) for i in range(count))


@sync
async def test_one_range_at_a_time_touches_only_what_it_changes(
    tmp_path: Path, netlab: Lab
) -> None:
    """Issue 22: each Allow/Deny/Remove rebuilt and re-sent the whole ruleset, so a call
    got slower as the lists grew. Now a single edit sends the kernel only the merged
    elements it changes (at most a delete and an add) and stores one row; the boot rules
    file follows; nested ranges come and go as entered."""
    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(deny=_many(2000), enabled=ON))
        s.filt.batches.clear()
        await s.net.edit_range("deny", "10.7.3.0/24", ADMIN)
        await s.net.edit_range("deny", "10.7.3.0/25", ADMIN)  # inside: the kernel set stays
        await s.net.edit_range("deny", "10.7.4.50", ADMIN)
        await s.net.edit_range("deny", "10.7.4.51", ADMIN)  # joins: out .50, in .50-.51
        assert s.filt.swaps == [(0, 1), (0, 1), (1, 1)] and s.filt.batches == []
        got = await asyncio.to_thread(
            netlab.probe,
            [Probe(str(a), "tcp", 80) for a in ("10.7.3.50", "10.7.4.50", "10.7.2.50")],
        )
        assert got == [False, False, True]
        s.filt.swaps.clear()
        view = await s.net.edit_range("remove", "10.7.3.0/24", ADMIN)
        assert s.filt.swaps == [(1, 1)]  # out the /24, in the /25 that was inside it
        assert s.filt.batches == []
        assert view.policy.deny[-3:] == (R("10.7.3.0/25"), R("10.7.4.50"), R("10.7.4.51"))
        kernel = _kernel_set(netlab, "deny4")
        assert len(kernel) == len(view.effective_deny) == 2000 + 2
        assert {"prefix": {"addr": "10.7.3.0", "len": 25}} in kernel
        assert {"prefix": {"addr": "10.7.4.50", "len": 31}} in kernel
        # The /25 inside it still refuses 10.7.3.50; removing it as well admits it.
        assert await asyncio.to_thread(netlab.probe, [Probe("10.7.3.50", "tcp", 80)]) == [False]
        await s.net.edit_range("remove", "10.7.3.0/25", ADMIN)
        assert await asyncio.to_thread(netlab.probe, [Probe("10.7.3.50", "tcp", 80)]) == [True]
        await s.net.edit_range("deny", "10.7.3.0/25", ADMIN)
        # Removing what was never entered (a merged form included) changes nothing.
        with pytest.raises(MfpsecError) as info:
            await s.net.edit_range("remove", "10.7.4.50-10.7.4.51", ADMIN)
        assert info.value.code is ErrorCode.NETWORK_RULES_INVALID
        # The first permitted IPv4 range adds a rule: the whole policy goes in at once.
        s.filt.batches.clear()
        await s.net.edit_range("allow", "10.7.0.0/16", ADMIN)
        assert s.filt.batches[0] > 20
        await s.net.flush()
        boot = json.loads((tmp_path / "netfilter.json").read_text())["nftables"]
        deny4 = [
            c["add"]["element"]["elem"]
            for c in boot
            if c.get("add", {}).get("element", {}).get("name") == "deny4"
        ]
        assert len(deny4) == 1 and len(deny4[0]) == 2002  # what the kernel holds
        assert {"prefix": {"addr": "10.7.3.0", "len": 25}} in deny4[0]
        assert {"prefix": {"addr": "10.7.4.50", "len": 31}} in deny4[0]
        # IPv6 as nft prints it (a prefix, a range, an IPv4-mapped address).
        for text in ("2001:db8:7:3::/64", "2001:db8:7:4::50-2001:db8:7:4::60", "::ffff:10.9.9.9"):
            await s.net.edit_range("deny", text, ADMIN)
        assert "drift" not in json.dumps(await s.events(EventType.NETFILTER_CHANGE))
        assert not await s.net.check_drift()  # the elements are what the edits made
        # An interval that ends at the last address goes through libnftables instead.
        s.filt.batches.clear()
        await s.net.edit_range("deny", "255.255.255.0/24", ADMIN)
        assert len(s.filt.batches) == 1
        assert {"prefix": {"addr": "255.255.255.0", "len": 24}} in _kernel_set(netlab, "deny4")
        # One element taken out behind the daemon's back is drift, and is put back.
        sh(
            "ip",
            "netns",
            "exec",
            netlab.dut,
            "nft",
            "delete",
            "element",
            "inet",
            nf.TABLE,
            "deny4",
            "{ 10.7.3.0/25 }",
        )
        assert await s.net.check_drift()
        assert {"prefix": {"addr": "10.7.3.0", "len": 25}} in _kernel_set(netlab, "deny4")
        assert not await s.net.check_drift()
        entered = (await s.net.view()).policy
    async with stack(tmp_path, netlab) as s:  # restart: the rows, in the order entered
        again = (await s.net.view()).policy
        assert (again.allow, again.deny) == (entered.allow, entered.deny)


@sync
async def test_a_file_of_ranges_is_checked_whole_and_applied_in_one_transaction(
    tmp_path: Path, netlab: Lab
) -> None:
    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(deny=(R("10.7.3.50"),), enabled=ON))
        lines = [str(r) for r in _many(5000)]
        good = (
            "# blocklist of 2026-12-05\n"
            + "\n".join(lines)
            + "\n10.7.3.50\n"
            + lines[0]
            + "  # again\n\n"
        )
        bad = good + "10.7.0.1/8\nnot-an-address\n"
        s.filt.batches.clear()
        with pytest.raises(MfpsecError) as info:
            await s.net.import_ranges("deny", bad, ADMIN, replace_list=False)
        reason = str(info.value.params["reason"])
        assert info.value.code is ErrorCode.NETWORK_RULES_INVALID
        assert "line 5005: 10.7.0.1/8" in reason and "line 5006: " in reason
        assert "nothing was imported" in reason
        assert s.filt.batches == [] and len((await s.net.view()).policy.deny) == 1
        view, n = await s.net.import_ranges("deny", good, ADMIN, replace_list=False)
        assert (n.ranges, n.added, n.unchanged, n.removed, n.duplicates) == (5002, 5000, 1, 0, 1)
        assert len(s.filt.batches) == 1  # one kernel transaction
        assert len(view.policy.deny) == 5001 and view.policy.deny[0] == R("10.7.3.50")
        assert len(_kernel_set(netlab, "deny4")) == 5001
        # Replace: the list becomes the file.
        view, n = await s.net.import_ranges(
            "deny", "10.7.4.0/24\n10.7.3.50\n", ADMIN, replace_list=True
        )
        assert (n.added, n.unchanged, n.removed) == (1, 1, 5000)
        assert view.policy.deny == (R("10.7.4.0/24"), R("10.7.3.50"))
        got = await asyncio.to_thread(
            netlab.probe,
            [Probe(str(a), "tcp", 80) for a in ("10.7.3.50", "10.7.4.50", "10.7.2.50")],
        )
        assert got == [False, False, True]
        imports = [
            e["details"]
            for e in await s.events(EventType.NETFILTER_CHANGE)
            if e["details"].get("change") == "import refused"
        ]
        assert [(d.get("added"), d.get("removed"), d["mode"]) for d in imports] == [
            (None, None, "add"),
            (5000, 0, "add"),
            (1, 5000, "replace"),
        ]
        policy = (await s.net.view()).policy
    async with stack(tmp_path, netlab) as s:
        assert (await s.net.view()).policy.deny == policy.deny


@sync
async def test_single_edits_are_logged_rows_folded_into_a_snapshot(
    tmp_path: Path, netlab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit writes one row (the list's log); once the log outgrows the list, the
    next settle folds it into one snapshot row; a restart reads either back the same."""
    monkeypatch.setattr(svc, "COMPACT_ROWS", 3)

    def ops() -> list[str]:
        with sqlite3.connect(tmp_path / "state.sqlite3") as db:
            return [
                str(r[0])
                for r in db.execute("SELECT op FROM net_ranges WHERE list = 'deny' ORDER BY seq")
            ]

    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(deny=(R("10.7.3.50"), R("10.7.3.51")), enabled=ON))
        assert ops() == ["snapshot"]
        await s.net.edit_range("deny", "10.7.4.1", ADMIN)
        await s.net.edit_range("remove", "10.7.3.50", ADMIN)
        assert ops() == ["snapshot", "add", "remove"]
        logged = (await s.net.view()).policy.deny
    async with stack(tmp_path, netlab) as s:  # the log replayed
        assert (await s.net.view()).policy.deny == logged == (R("10.7.3.51"), R("10.7.4.1"))
        for _ in range(2):
            await s.net.edit_range("deny", "10.7.4.2", ADMIN)
            await s.net.edit_range("remove", "10.7.4.2", ADMIN)
        assert len(ops()) == 7
        await s.net.flush()
        assert ops() == ["snapshot"]  # 6 edit rows for a list of 2: folded
    async with stack(tmp_path, netlab) as s:
        assert (await s.net.view()).policy.deny == logged


@sync
async def test_large_deltas_removed_tables_and_moved_addresses(tmp_path: Path, netlab: Lab) -> None:
    """A range that swallows 2,000 elements (and its removal, which gives them back)
    goes in as element swaps split over several messages; a table deleted by hand is
    declared again whole; a new address with the quick filter off is no drift."""
    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(deny=_many(2000), enabled=ON))
        s.filt.batches.clear()
        await s.net.edit_range("deny", "10.200.0.0/16", ADMIN)
        assert s.filt.swaps[-1] == (2000, 1) and s.filt.batches == []
        assert _kernel_set(netlab, "deny4") == [{"prefix": {"addr": "10.200.0.0", "len": 16}}]
        await s.net.edit_range("remove", "10.200.0.0/16", ADMIN)
        assert s.filt.swaps[-1] == (1, 2000) and s.filt.batches == []
        assert len(_kernel_set(netlab, "deny4")) == 2000
        assert not await s.net.check_drift()

        sh("ip", "-n", netlab.dut, "addr", "add", "10.77.0.1/24", "dev", "lan0")
        try:
            await s.net.follow_addresses()
            assert not await s.net.check_drift()  # the quick sets hold what was applied
        finally:
            sh("ip", "-n", netlab.dut, "addr", "del", "10.77.0.1/24", "dev", "lan0")

        sh("ip", "netns", "exec", netlab.dut, "nft", "delete", "table", "inet", nf.TABLE)
        assert await s.net.check_drift()
        assert len(_kernel_set(netlab, "deny4")) == 2000
        got = await asyncio.to_thread(netlab.probe, [Probe("10.7.2.50", "tcp", 80)])
        assert got == [True]
        assert not await s.net.check_drift()


@sync
async def test_a_source_that_keeps_flooding_is_banned_for_longer_each_time(
    tmp_path: Path, netlab: Lab
) -> None:
    """fail2ban's idea: the flood detector's audit records ban the source at the filter
    (10 min, then 40), an administrator's source never; the kernel counts the time down,
    a re-apply keeps the ban, and an administrator lifts it."""
    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(enabled=ON))
        clock = SystemClock()
        bans = FloodBans(
            s.net,
            Throttle(ThrottleLimits(), exempt=[R("10.7.2.0/24")]),
            BanPolicy(600, 86400),
            clock,
        )
        s.auditor.add_listener(bans.offer)
        task = asyncio.create_task(bans.run())
        attacker = Subject(origin="network", address="10.7.3.50")

        async def trip(source: str, kind: str = "request-flood") -> None:
            await s.auditor.record(
                EventType.AUTH_FLOOD,
                Outcome.SUCCESS,
                attacker,
                source,
                kind=kind,
                count=21,
                window_s=60.0,
                suppressed=0,
            )

        async def banned() -> dict[str, int]:
            for _ in range(100):
                got = {str(b.range): b.left_s for b in await s.net.bans()}
                if got:
                    return got
                await asyncio.sleep(0.05)
            return {}

        await trip("ip:10.7.3.50")
        first = await banned()
        assert list(first) == ["10.7.3.50"] and 590 <= first["10.7.3.50"] <= 600
        got = await asyncio.to_thread(
            netlab.probe, [Probe(str(a), "tcp", 80) for a in ("10.7.3.50", "10.7.2.50")]
        )
        assert got == [False, True]
        await trip("ip:10.7.3.50", "password-attack")  # again: four times longer
        for _ in range(100):
            if (await banned())["10.7.3.50"] > 600:
                break
            await asyncio.sleep(0.05)
        assert 2390 <= (await banned())["10.7.3.50"] <= 2400
        await trip("ip:10.7.2.50")  # exempt
        await trip("uid:1000")  # not a network source
        await trip("ip:10.7.4.50", "total-flood")  # everyone's flood: nobody in particular
        await asyncio.sleep(0.3)
        assert list(await banned()) == ["10.7.3.50"]
        await s.set(nf.Policy(deny=(R("10.7.4.0/24"),), enabled=ON))  # a whole re-apply
        assert list(await banned()) == ["10.7.3.50"]
        assert not await s.net.check_drift()  # bans count down by themselves: no drift
        view = await s.net.unban("10.7.3.50", ADMIN)
        assert view.banned == []
        with pytest.raises(MfpsecError) as info:
            await s.net.unban("10.7.3.50", ADMIN)
        assert "is not banned" in str(info.value.params["reason"])
        got = await asyncio.to_thread(netlab.probe, [Probe("10.7.3.50", "tcp", 80)])
        assert got == [True]
        changes = [
            e["details"]["change"]
            for e in await s.events(EventType.NETFILTER_CHANGE)
            if e["details"].get("step") == "ban"
        ]
        assert changes == ["ban 10.7.3.50", "ban 10.7.3.50", "unban 10.7.3.50", "unban 10.7.3.50"]
        task.cancel()


@sync
async def test_an_edit_the_store_refused_is_stored_at_the_next_settle(
    tmp_path: Path, netlab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel took the edit but its row could not be written (a full disk): the
    caller is told, status says so, and the next settle stores the whole list."""
    real = svc._store_edits

    def full_disk(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(deny=(R("10.7.9.1"),), enabled=ON))
        monkeypatch.setattr(svc, "_store_edits", full_disk)
        with pytest.raises(OSError):
            await s.net.edit_range("deny", "10.7.3.0/24", ADMIN)
        monkeypatch.setattr(svc, "_store_edits", real)
        component = s.net._health.get(svc.COMPONENT)
        assert component is not None and "not stored" in component.detail
        assert await asyncio.to_thread(netlab.probe, [Probe("10.7.3.50", "tcp", 80)]) == [
            False
        ]  # in force
        await s.net.flush()
        component = s.net._health.get(svc.COMPONENT)
        assert component is not None and "not stored" not in component.detail
    async with stack(tmp_path, netlab) as s:
        assert (await s.net.view()).policy.deny == (R("10.7.9.1"), R("10.7.3.0/24"))


@sync
async def test_an_edit_that_finds_its_set_changed_by_hand_reports_drift(
    tmp_path: Path, netlab: Lab
) -> None:
    async with stack(tmp_path, netlab) as s:
        await s.set(nf.Policy(deny=(R("10.7.3.0/25"), R("10.7.9.1")), enabled=ON))
        sh(
            "ip",
            "netns",
            "exec",
            netlab.dut,
            "nft",
            "delete",
            "element",
            "inet",
            nf.TABLE,
            "deny4",
            "{ 10.7.9.1 }",
        )
        await s.net.edit_range("remove", "10.7.9.1", ADMIN)  # its element is gone already
        drift = [
            e["details"]["reason"]
            for e in await s.events(EventType.NETFILTER_CHANGE)
            if e["details"].get("step") == "drift"
        ]
        assert drift == ["a set's elements differ from the last applied"]
        assert _kernel_set(netlab, "deny4") == [{"prefix": {"addr": "10.7.3.0", "len": 25}}]
        assert not await s.net.check_drift()
