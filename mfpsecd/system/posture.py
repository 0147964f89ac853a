"""The S-1 security posture: every item the capabilities report, with since when each
has been in its state under its setting (kept in the state database, so a restart does
not make an old setting look new). An item whose capability cannot say is reported off,
with why: the posture never shows a protection as on that it could not check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import MfpsecError
from mfpsecd.base.posture import (
    TITLES,
    UNREADABLE,
    UNREPORTED,
    PostureId,
    PostureItem,
    PostureSource,
    PostureState,
)
from mfpsecd.base.state import StateConnection, StateStore

log = structlog.get_logger("mfpsecd.system")


@dataclass(frozen=True)
class PostureEntry:
    item: PostureItem
    since: str  # RFC 3339: when the item took its present state and setting

    @property
    def title(self) -> str:
        return TITLES[self.item.id]


@dataclass(frozen=True)
class PostureChange:
    """An item that turned from one state to another since it was last read."""

    item: PostureItem
    was: PostureState


class PostureBook:
    """The posture's sources, by the items each owns, and the items' history."""

    def __init__(
        self,
        state: StateStore,
        clock: Clock,
        on_change: Callable[[list[PostureChange]], Awaitable[None]] | None = None,
    ) -> None:
        self._state = state
        self._clock = clock
        self._sources: list[tuple[frozenset[PostureId], PostureSource]] = []
        self._on_change = on_change

    def add_source(self, ids: Iterable[PostureId], source: PostureSource) -> None:
        self._sources.append((frozenset(ids), source))

    async def current(self) -> list[PostureEntry]:
        """Every S-1 item, in the panel's order."""
        found: dict[PostureId, PostureItem] = {}
        for ids, source in self._sources:
            for item in await _read(ids, source):
                if item.id in ids:
                    found[item.id] = item
            for missing in ids - found.keys():
                found[missing] = PostureItem(missing, PostureState.OFF, "unknown", UNREPORTED)
        for unowned in PostureId:
            found.setdefault(
                unowned,
                PostureItem(unowned, PostureState.NOT_MANAGED, "", "not managed by this daemon"),
            )
        items = [found[i] for i in PostureId]
        now = rfc3339(self._clock)
        since, changes = await self._state.run(lambda conn: _remember(conn, items, now))
        if changes and self._on_change is not None:
            await self._on_change(changes)
        return [PostureEntry(item, since[item.id.value]) for item in items]

    async def watch(self, period_s: float) -> None:
        """Supervised task: read the posture every period, so that a protection turned
        off is noticed (and recorded) even when nobody looks."""
        while True:
            await self.current()
            await self._clock.sleep(period_s)


async def _read(ids: frozenset[PostureId], source: PostureSource) -> list[PostureItem]:
    try:
        return await source()
    except MfpsecError as exc:
        why = f"{UNREADABLE}: {exc.code.wire_name}"
    except Exception as exc:  # a posture must come back whatever one source does
        log.exception("posture_source_failed")
        why = f"{UNREADABLE}: {type(exc).__name__}"
    return [PostureItem(i, PostureState.OFF, "unknown", why) for i in ids]


def _remember(
    conn: StateConnection, items: list[PostureItem], now: str
) -> tuple[dict[str, str], list[PostureChange]]:
    """Each item's since: kept while its state and setting stay, now when either changed;
    and the items whose state changed (not the first time an item is seen)."""
    rows = conn.execute("SELECT id, state, setting, since FROM posture_history").fetchall()
    known = {str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}
    out: dict[str, str] = {}
    changes: list[PostureChange] = []
    for item in items:
        key, value = item.id.value, (item.state.value, item.setting)
        was = known.get(key)
        if was is not None and was[:2] == value:
            out[key] = was[2]
            continue
        if was is not None and was[0] != item.state.value:
            try:
                changes.append(PostureChange(item, PostureState(was[0])))
            except ValueError:  # a row this daemon cannot read: no change to report
                log.warning("posture_history_unreadable", item=key)
        conn.execute(
            "INSERT INTO posture_history (id, state, setting, since) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "setting = excluded.setting, since = excluded.since",
            (key, *value, now),
        )
        out[key] = now
    return out, changes
