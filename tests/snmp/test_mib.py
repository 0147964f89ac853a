"""The MFPSEC-MIB file and the objects the subagent serves agree: the file is clean SMIv2
(smilint at level 6), net-snmp resolves every name the code uses to the OID the code
uses, every default alert rule has its own notification, and the posture rows keep the
numbers the MIB documents. Lookups (Get, GetNext within a range, GetBulk) follow RFC 2741
7.2.3."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from mfpsecd.alerts.notifications import BY_RULE, GENERIC, notification_oid
from mfpsecd.alerts.rules import DEFAULT_RULES
from mfpsecd.alerts.smi import SmiType, mib_root
from mfpsecd.base.posture import PostureId
from mfpsecd.snmp.model.agentx_pdu import SearchRange
from mfpsecd.snmp.model.facts import (
    ComponentRow,
    Counter,
    DaemonFacts,
    Facts,
    PostureRow,
)
from mfpsecd.snmp.model.mib_objects import MibView
from tests.support.snmp_agents import MIB_DIRS

ROOT = Path(__file__).resolve().parents[2]
MIB = ROOT / "mfpsecd" / "snmp" / "MFPSEC-MIB.txt"
PEN = 32473
R = mib_root(PEN)


def _facts() -> Facts:
    return Facts(
        DaemonFacts("1.2.3", "ready", 61.25, "2026-12-06T10:00:00Z", 4, "unclean", "sim", "ab"),
        [
            PostureRow(1, "admin-password", "Administrator password", "on", "set", "", "x"),
            PostureRow(3, "temporary-data-overwrite", "T", "off", "none", "why\x1b[2J", ""),
        ],
        [ComponentRow("audit", "ok", 2, "fine"), ComponentRow("siem-b", "backoff", 0, "")],
        {Counter.LOGINS_FAILED: 7},
        forward_backlog=12,
    )


def _translate(name: str) -> str:
    r = subprocess.run(
        ["snmptranslate", "-On", "-m", "MFPSEC-MIB", f"MFPSEC-MIB::{name}"],
        capture_output=True,
        text=True,
        check=False,
        env={"MIBDIRS": MIB_DIRS, "SNMPCONFPATH": "/nonexistent", "HOME": "/nonexistent"},
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_mib_is_clean_smiv2() -> None:
    r = subprocess.run(
        ["smilint", "-l", "6", "-s", str(MIB)],
        capture_output=True,
        text=True,
        check=False,
        env={"SMIPATH": str(ROOT / "tests" / "data" / "mibs")},
    )
    assert (r.returncode, r.stdout + r.stderr) == (0, "")


def test_net_snmp_names_every_object_at_the_oid_the_subagent_serves_it() -> None:
    view = MibView(PEN, _facts())
    served = {v.oid for v in (view.get_bulk([SearchRange(R, False, ())], 0, 500))}
    names = {
        "mfpsecDaemonVersion.0": (*R, 1, 1, 1, 0),
        "mfpsecDaemonUptime.0": (*R, 1, 1, 3, 0),
        "mfpsecIdentityFingerprint.0": (*R, 1, 1, 8, 0),
        "mfpsecPostureState.3": (*R, 1, 2, 1, 1, 4, 3),
        "mfpsecPostureSince.1": (*R, 1, 2, 1, 1, 7, 1),
        'mfpsecComponentState."audit"': (*R, 1, 3, 1, 1, 2, 5, *b"audit"),
        "mfpsecLoginsFailed.0": (*R, 1, 4, 2, 0),
        "mfpsecAuditForwardBacklog.0": (*R, 1, 4, 7, 0),
        "mfpsecAlertsRaised.0": (*R, 1, 4, 15, 0),
        "mfpsecFirmwareRewriteProhibited.0": (*R, 1, 5, 5, 0),
        "mfpsecKeyChainLastBackup.0": (*R, 1, 6, 4, 0),
    }
    for name, oid in names.items():
        assert _translate(name) == "." + ".".join(map(str, oid)), name
        assert oid in served, name
    for counter in Counter:
        assert (*R, 1, 4, counter.value, 0) in served


def test_every_default_rule_has_a_notification_of_its_own_in_the_mib() -> None:
    assert {r.name for r in DEFAULT_RULES} == set(BY_RULE)
    numbers = [n for n, _ in BY_RULE.values()]
    assert len(set(numbers)) == len(numbers)
    for rule, (_, name) in [*BY_RULE.items(), ("a rule of my own", (1, GENERIC))]:
        assert _translate(name) == "." + ".".join(map(str, notification_oid(PEN, rule)))


def test_the_posture_rows_keep_the_numbers_the_mib_documents() -> None:
    text = " ".join(MIB.read_text().split())
    documented = re.search(r'panel shows them\. .*?" ::= \{ mfpsecPosture 1 \}', text)
    assert documented is not None
    pairs = re.findall(r"(\d+) ([a-z][a-z-]+[a-z])[,.]", documented.group(0))
    assert [(int(n), name) for n, name in pairs] == [
        (n, p.value) for n, p in enumerate(PostureId, start=1)
    ]


def test_get_answers_the_instance_or_says_why_not() -> None:
    view = MibView(PEN, _facts())
    assert view.get((*R, 1, 4, 2, 0)).value == 7
    assert view.get((*R, 1, 4, 7, 0)).type is SmiType.GAUGE32
    assert view.get((*R, 1, 1, 3, 0)).value == 6125  # hundredths of a second
    # Untrusted text arrives escaped: a detail cannot drive a manager's terminal.
    assert view.get((*R, 1, 2, 1, 1, 6, 3)).value == b"why\\x1b[2J"
    # A posture row this build does not have, a column that does not exist.
    assert view.get((*R, 1, 2, 1, 1, 4, 2)).type is SmiType.NO_SUCH_INSTANCE
    assert view.get((*R, 1, 2, 1, 1, 9, 1)).type is SmiType.NO_SUCH_OBJECT
    assert view.get((*R, 9)).type is SmiType.NO_SUCH_OBJECT
    # A time never set is the TC's unknown value, never an illegal empty string.
    assert view.get((*R, 1, 6, 4, 0)).value == bytes(8)


def test_getnext_walks_in_order_and_stays_inside_its_range() -> None:
    view = MibView(PEN, _facts())
    first = view.get_next(SearchRange((1, 3, 6, 1, 4, 1, PEN), False, ()))
    assert first.oid == (*R, 1, 1, 1, 0)
    assert view.get_next(SearchRange(first.oid, True, ())).oid == first.oid  # include
    walked, at = [], SearchRange(R, False, (*R, 1, 2))
    while (v := view.get_next(at)).type is not SmiType.END_OF_MIB_VIEW:
        walked.append(v.oid)
        at = SearchRange(v.oid, False, at.end)
    assert walked == sorted(walked) and len(walked) == 8  # the daemon group, no further
    # Components by name: shorter names first (length-prefixed index), then by octets.
    states = [v.oid for v in view.get_bulk([SearchRange((*R, 1, 3, 1, 1, 2), False, ())], 0, 2)]
    assert states == [(*R, 1, 3, 1, 1, 2, 5, *b"audit"), (*R, 1, 3, 1, 1, 2, 6, *b"siem-b")]


def test_getbulk_repeats_row_by_row_and_stops_at_the_end() -> None:
    view = MibView(PEN, _facts())
    ranges = [
        SearchRange((*R, 1, 1, 1), False, ()),  # a non-repeater
        SearchRange((*R, 1, 4, 1), False, ()),
        SearchRange((*R, 1, 5, 1), False, ()),
    ]
    got = view.get_bulk(ranges, 1, 3)
    assert [v.oid[len(R) :] for v in got] == [
        (1, 1, 1, 0),
        (1, 4, 1, 0),
        (1, 5, 1, 0),
        (1, 4, 2, 0),
        (1, 5, 2, 0),
        (1, 4, 3, 0),
        (1, 5, 3, 0),
    ]
    tail = view.get_bulk([SearchRange((*R, 1, 6, 4, 0), False, ())], 0, 5)
    assert [v.type for v in tail] == [SmiType.END_OF_MIB_VIEW]
