"""The MFPSEC-MIB's objects (mfpsecd/snmp/MFPSEC-MIB.txt, mfpsecObjects) from one Facts,
in lexicographic order, and the AgentX lookups over them: Get (an exact instance),
GetNext within a search range, GetBulk. Pure."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from mfpsecd.alerts.smi import Oid, SmiType, VarBind, date_and_time, mib_root, text
from mfpsecd.snmp.model.agentx_pdu import SearchRange
from mfpsecd.snmp.model.facts import FORWARD_BACKLOG, Counter, Facts

# The MIB's enumerations (INTEGER { ... }) by the daemon's own names.
DAEMON_STATE = {"starting": 1, "ready": 2, "degraded": 3, "stopping": 4, "failed": 5}
SHUTDOWN = {"none": 1, "clean": 2, "unclean": 3}
POSTURE_STATE = {"on": 1, "off": 2, "not_applicable": 3, "not_managed": 4}
HEALTH_STATE = {"starting": 1, "ok": 2, "degraded": 3, "backoff": 4, "failed": 5, "stopped": 6}
BOOT_VERIFICATION = {"": 1, "verified": 2, "failed": 3, "not-applicable": 4}
CHAIN_STATE = {"starting": 1, "ready": 2, "locked": 3, "destroyed": 4, "closed": 5}
TRUTH = {True: 1, False: 2}  # SNMPv2-TC TruthValue
MAX_NAME = 64  # mfpsecComponentName SIZE (1..64)


def _int(oid: Oid, value: int) -> VarBind:
    return VarBind(oid, SmiType.INTEGER, value)


def _gauge(oid: Oid, value: int) -> VarBind:
    return VarBind(oid, SmiType.GAUGE32, max(0, min(value, 0xFFFFFFFF)))


def _counter(oid: Oid, value: int) -> VarBind:
    return VarBind(oid, SmiType.COUNTER64, max(0, value))


def _when(oid: Oid, rfc3339: str) -> VarBind:
    return VarBind(oid, SmiType.OCTET_STRING, date_and_time(rfc3339))


def _string_index(name: str) -> Oid:
    """A non-IMPLIED SnmpAdminString index: its length, then its octets."""
    data = name.encode()
    return (len(data), *data)


def _objects(root: Oid, facts: Facts) -> Iterator[VarBind]:
    d, o = facts.daemon, (*root, 1)
    base = (*o, 1)
    yield text((*base, 1, 0), d.version)
    yield _int((*base, 2, 0), DAEMON_STATE.get(d.state, 3))
    yield VarBind((*base, 3, 0), SmiType.TIME_TICKS, int(d.uptime_s * 100) & 0xFFFFFFFF)
    yield _when((*base, 4, 0), d.started_at)
    yield _gauge((*base, 5, 0), d.boot_count)
    yield _int((*base, 6, 0), SHUTDOWN.get(d.previous_shutdown, 1))
    yield text((*base, 7, 0), d.board)
    yield text((*base, 8, 0), d.identity_fingerprint)

    entry = (*o, 2, 1, 1)
    for p in facts.posture:
        yield text((*entry, 2, p.number), p.name)
        yield text((*entry, 3, p.number), p.title)
        yield _int((*entry, 4, p.number), POSTURE_STATE.get(p.state, 2))
        yield text((*entry, 5, p.number), p.setting)
        yield text((*entry, 6, p.number), p.detail)
        yield _when((*entry, 7, p.number), p.since)

    entry = (*o, 3, 1, 1)
    for c in facts.components:
        if not 0 < len(c.name.encode()) <= MAX_NAME:
            continue
        index = _string_index(c.name)
        yield _int((*entry, 2, *index), HEALTH_STATE.get(c.state, 5))
        yield _counter((*entry, 3, *index), c.restarts)
        yield text((*entry, 4, *index), c.detail)

    base = (*o, 4)
    for counter in Counter:
        yield _counter((*base, int(counter), 0), facts.counters.get(counter, 0))
    yield _gauge((*base, FORWARD_BACKLOG, 0), facts.forward_backlog)

    fw, base = facts.firmware, (*o, 5)
    yield text((*base, 1, 0), fw.version)
    yield _gauge((*base, 2, 0), fw.epoch)
    yield _gauge((*base, 3, 0), max(fw.floor, 0))
    yield _int((*base, 4, 0), BOOT_VERIFICATION.get(fw.boot, 1))
    yield _int((*base, 5, 0), TRUTH[fw.rewrite_prohibited])

    k, base = facts.keys, (*o, 6)
    yield _int((*base, 1, 0), CHAIN_STATE.get(k.state, 1))
    yield _int((*base, 2, 0), TRUTH[k.tpm_bound])
    yield _gauge((*base, 3, 0), k.generation)
    yield _when((*base, 4, 0), k.last_backup)


# The objects (scalars and columns) of each group of mfpsecObjects, by sub-identifier.
_GROUPS: dict[tuple[int, ...], range] = {
    (1,): range(1, 9),
    (2, 1, 1): range(2, 8),
    (3, 1, 1): range(2, 5),
    (4,): range(1, 16),
    (5,): range(1, 6),
    (6,): range(1, 5),
}


def _object_oids(root: Oid) -> frozenset[Oid]:
    return frozenset((*root, 1, *group, k) for group, ks in _GROUPS.items() for k in ks)


class MibView:
    """One moment's objects, sorted by OID."""

    def __init__(self, enterprise: int, facts: Facts) -> None:
        self.root = mib_root(enterprise)
        # Tables are built column by column above, so the whole is sorted once here.
        self._objects = sorted(_objects(self.root, facts), key=lambda v: v.oid)
        self._oids = [v.oid for v in self._objects]
        self._object_oids = _object_oids(self.root)

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, oid: Oid) -> VarBind:
        i = bisect.bisect_left(self._oids, oid)
        if i < len(self._oids) and self._oids[i] == oid:
            return self._objects[i]
        # noSuchInstance for an object the MIB defines at a missing instance (a posture
        # row this build lacks), noSuchObject for an OID that names no object.
        known = any(oid[:n] in self._object_oids for n in range(len(self.root) + 3, len(oid)))
        return VarBind(oid, SmiType.NO_SUCH_INSTANCE if known else SmiType.NO_SUCH_OBJECT)

    def get_next(self, search: SearchRange) -> VarBind:
        """The first object at or after start (after, unless include), before end."""
        find = bisect.bisect_left if search.include else bisect.bisect_right
        i = find(self._oids, search.start)
        if i < len(self._oids) and (not search.end or self._oids[i] < search.end):
            return self._objects[i]
        return VarBind(search.start, SmiType.END_OF_MIB_VIEW)

    def get_bulk(
        self, ranges: list[SearchRange], non_repeaters: int, max_repetitions: int
    ) -> list[VarBind]:
        """RFC 2741 7.2.3.3: the non-repeaters once, then each repeater max_repetitions
        times, row by row, each continuing after what it returned before."""
        out = [self.get_next(r) for r in ranges[:non_repeaters]]
        repeaters = list(ranges[non_repeaters:])
        for _ in range(max_repetitions if repeaters else 0):
            row = [self.get_next(r) for r in repeaters]
            out += row
            if all(v.type is SmiType.END_OF_MIB_VIEW for v in row):
                break
            repeaters = [
                SearchRange(v.oid, False, r.end) if v.type is not SmiType.END_OF_MIB_VIEW else r
                for v, r in zip(row, repeaters, strict=True)
            ]
        return out
