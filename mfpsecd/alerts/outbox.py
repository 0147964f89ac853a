"""Notifications a rule fired, kept in the state store until every channel has taken them.

A mail server that is down, a network that is not up yet, a daemon restart, or the boot
unit (which runs before the network and has no notifier of its own) loses no alert: the
alert is written here first and taken off a channel's list only after that channel
accepted it. Delivery is at least once per channel: a power cut between the send and its
mark sends that alert again at the next start, never zero times.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfpsecd.audit.log_format import Record, canonical, decode
from mfpsecd.base.state import StateConnection, StateStore

# Rules are rate limited, so a device rarely holds more than a few; on a long outage under
# a storm the oldest go first, counted, so the table cannot fill the state partition.
MAX_PENDING = 1000
_COLUMNS = "id, rule, record, suppressed, first_suppressed, channels, attempts, last_error"


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    record: Record
    suppressed: int  # matching records not notified one by one (rate limit)
    first_suppressed: str
    channels: frozenset[str]  # still to deliver to
    attempts: int
    last_error: str


def _alert(r: tuple[object, ...]) -> Alert:
    raw = r[2]
    assert isinstance(raw, bytes)
    return Alert(
        int(str(r[0])),
        str(r[1]),
        decode(raw),
        int(str(r[3])),
        str(r[4]),
        frozenset(c for c in str(r[5]).split(",") if c),
        int(str(r[6])),
        str(r[7]),
    )


class AlertOutbox:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        self.dropped = 0

    async def put(
        self,
        rule: str,
        record: Record,
        *,
        suppressed: int,
        first_suppressed: str,
        channels: frozenset[str],
    ) -> None:
        if not channels:
            return

        def tx(conn: StateConnection) -> int:
            conn.execute(
                "INSERT INTO alert_outbox (rule, record, suppressed, first_suppressed, "
                "channels, attempts, last_error) VALUES (?, ?, ?, ?, ?, 0, '')",
                (rule, canonical(record), suppressed, first_suppressed, ",".join(sorted(channels))),
            )
            row = conn.execute("SELECT COUNT(*) FROM alert_outbox").fetchone()
            excess = int(str(row[0])) - MAX_PENDING if row else 0
            if excess > 0:
                conn.execute(
                    "DELETE FROM alert_outbox WHERE id IN (SELECT id FROM "
                    "alert_outbox ORDER BY id LIMIT ?)",
                    (excess,),
                )
            return max(excess, 0)

        self.dropped += await self._state.run(tx)

    async def pending(self) -> list[Alert]:
        def tx(conn: StateConnection) -> list[tuple[object, ...]]:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM alert_outbox "  # noqa: S608
                "ORDER BY id"
            ).fetchall()

        return [_alert(r) for r in await self._state.run(tx)]

    async def delivered(self, alert: Alert, channel: str) -> None:
        """channel took the alert; the alert leaves the outbox with its last channel."""

        def tx(conn: StateConnection) -> None:
            row = conn.execute(
                "SELECT channels FROM alert_outbox WHERE id = ?", (alert.id,)
            ).fetchone()
            if row is None:
                return
            left = sorted(set(str(row[0]).split(",")) - {channel, ""})
            if left:
                conn.execute(
                    "UPDATE alert_outbox SET channels = ? WHERE id = ?", (",".join(left), alert.id)
                )
            else:
                conn.execute("DELETE FROM alert_outbox WHERE id = ?", (alert.id,))

        await self._state.run(tx)

    async def failed(self, alert: Alert, error: str) -> None:
        def tx(conn: StateConnection) -> None:
            conn.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, alert.id),
            )

        await self._state.run(tx)

    async def forget(self, alert: Alert, channels: frozenset[str]) -> None:
        """Channels no longer configured: nothing will ever take the alert there."""
        for channel in channels:
            await self.delivered(alert, channel)
