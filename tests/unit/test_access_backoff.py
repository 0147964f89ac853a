from __future__ import annotations

from mfpsecd.base.access import Privilege
from mfpsecd.base.admission import AdmissionRules, PeerClass, PeerCredentials, allowed, classify
from mfpsecd.base.backoff import BackoffPolicy, BackoffState

RULES = AdmissionRules(
    daemon_uid=900, panel_uids=frozenset({1001}), maintenance_gids=frozenset({2000})
)


def test_classify() -> None:
    assert classify(PeerCredentials(1, 0, 0), RULES) is PeerClass.SYSTEM
    assert classify(PeerCredentials(1, 900, 5), RULES) is PeerClass.SYSTEM
    assert classify(PeerCredentials(1, 1001, 5), RULES) is PeerClass.PANEL
    assert classify(PeerCredentials(1, 1500, 2000), RULES) is PeerClass.MAINTENANCE
    assert classify(PeerCredentials(1, 1500, 5, (7, 2000)), RULES) is PeerClass.MAINTENANCE
    assert classify(PeerCredentials(1, 1500, 5, (7,)), RULES) is PeerClass.UNKNOWN


def test_unknown_peers_have_no_privilege() -> None:
    assert not any(allowed(PeerClass.UNKNOWN, p) for p in Privilege)
    # Root holds everything but account changes without an administrator's session and
    # what needs a person at the device (issue 22: root could otherwise make itself an
    # administrator and lift the firmware rewrite lock).
    assert {p for p in Privilege if not allowed(PeerClass.SYSTEM, p)} == {
        Privilege.USERS_ADMIN,
        Privilege.PRESENCE,
    }
    assert allowed(PeerClass.SYSTEM, Privilege.USERS_READ)
    assert allowed(PeerClass.SYSTEM, Privilege.USERS_RECOVER)
    assert allowed(PeerClass.PANEL, Privilege.PRESENCE)
    assert not allowed(PeerClass.MAINTENANCE, Privilege.USERS_RECOVER)
    assert allowed(PeerClass.PANEL, Privilege.STATUS_READ)


def test_backoff_grows_caps_resets_and_gives_up() -> None:
    s = BackoffState(
        BackoffPolicy(initial_s=1, factor=2, max_s=5, healthy_after_s=30, give_up_after=6)
    )
    assert [s.on_exit(0.1) for _ in range(5)] == [1, 2, 4, 5, 5]
    assert s.on_exit(0.1) is None
    s = BackoffState(BackoffPolicy(initial_s=1, factor=2, max_s=5, give_up_after=3))
    assert s.on_exit(0) == 1 and s.on_exit(0) == 2
    assert s.on_exit(60) == 1  # a healthy run resets the count
