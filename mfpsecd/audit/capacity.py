"""What the audit log does when its space runs out (L-5, FAU_STG_EXT.1): under
`overwrite-exported` the oldest segment goes once every record in it is safe elsewhere
(exported, or acknowledged by a SIEM); under `refuse` nothing is ever dropped and audited
operations are refused until an administrator makes room. The log's own records
(audit.*) are written from a reserve, so the log can always say that it is full.

The bookkeeping that must survive a restart (where the log now begins, and how far it is
exported) lives in `audit_meta` in the state store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import structlog

from mfpsecd.audit import log_format
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome
from mfpsecd.audit.ports import AuditStore
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import AuditFullPolicy
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.state import StateConnection, StateStore

log = structlog.get_logger("mfpsecd.audit")
COMPONENT = "audit"
_ROOM_BYTES = 4096  # less free space than this and a record may not fit

# Queues one of the log's own records from inside the writer (which cannot wait on itself).
Note = Callable[..., None]


class Capacity:
    def __init__(
        self,
        store: AuditStore,
        clock: Clock,
        health: HealthRegistry,
        state: StateStore | None,
        *,
        policy: AuditFullPolicy,
        retention_days: int,
    ) -> None:
        self._store = store
        self._clock = clock
        self._health = health
        self._state = state
        self.policy = policy
        self._retention_days = retention_days
        # Where the log now begins (the chain's first record and the hash before it).
        self.base_seq, self.base_prev = 1, log_format.GENESIS
        self.exported_through = 0
        self.refusing = False  # since an append found no room, until one fits again
        self._reads_while_full = 0  # audit.read events not written while full
        self._note: Note = lambda *args, **kwargs: None

    def set_note(self, note: Note) -> None:
        self._note = note

    async def load(self) -> None:
        meta = await self._meta()
        self.base_seq = int(meta.get("base_seq", "1"))
        self.base_prev = bytes.fromhex(meta.get("base_prev", log_format.GENESIS.hex()))
        self.exported_through = int(meta.get("exported_through", "0"))

    def refuses(self, type_: EventType) -> bool:
        """Whether an operation of this type may not even start: its record could not be
        kept (the refusal itself was recorded when it began). The log's own records
        always go on, from the reserve."""
        return self.refusing and not type_.value.startswith("audit.") and self.still_full()

    def read_while_full(self, type_: EventType) -> bool:
        """Reading the log must work while it is full (it is how room is made): each read
        is counted instead of written into the reserve kept for the log's own records,
        and one record says how many there were once there is room. → counted."""
        if type_ is EventType.AUDIT_READ and self.refusing and self.still_full():
            self._reads_while_full += 1
            return True
        return False

    async def append(self, payloads: list[bytes], *, own: bool) -> None:
        """Append a batch (own: only the log's own records, which may use the reserve),
        dropping exported segments for room where the policy allows it."""
        while True:
            try:
                await self._store.append(payloads, use_reserve=own)
            except MfpsecError as exc:
                if exc.code is not ErrorCode.AUDIT_FULL:
                    raise
                if await self.drop_for_room():
                    continue
                self._start_refusing()
                raise self.full_error() from None
            if self.refusing and not own:
                self._room_again()
            return

    def _start_refusing(self) -> None:
        if self.refusing:
            return
        self.refusing = True  # said once per episode, from the reserve
        self._note(
            EventType.AUDIT_FULL,
            Outcome.FAILURE,
            policy=self.policy.value,
            action="refusing audited operations",
            exported_through=self.exported_through,
        )
        self._health.set(
            COMPONENT, HealthState.FAILED, "full: refusing audited operations until exported"
        )

    def _room_again(self) -> None:
        self.refusing = False
        self._health.set(COMPONENT, HealthState.OK, "room again")
        if self._reads_while_full:
            self._note(
                EventType.AUDIT_READ,
                Outcome.SUCCESS,
                action="reads while the log was full, not recorded one by one",
                count=self._reads_while_full,
            )
            self._reads_while_full = 0

    def full_error(self) -> MfpsecError:
        """AuditFull saying what, under this policy, actually makes room."""
        if self.policy is AuditFullPolicy.OVERWRITE_EXPORTED:
            how = "export it (mfpsec audit export): the oldest exported records then make room"
        else:
            how = (
                "nothing is ever dropped under the refuse policy, so exporting alone "
                "frees nothing: an administrator exports it and raises audit.max_bytes, "
                "or sets audit.full_policy = overwrite-exported"
            )
        return MfpsecError(
            ErrorCode.AUDIT_FULL, f"The audit log is full: {how}.", policy=self.policy.value
        )

    def still_full(self) -> bool:
        usage = self._store.usage()
        if usage.free_bytes >= _ROOM_BYTES:
            return False
        return not (
            self.policy is AuditFullPolicy.OVERWRITE_EXPORTED
            and usage.segments >= 2
            and usage.oldest_last_seq <= self.exported_through
        )

    async def drop_for_room(self, *, reason: str = "capacity") -> bool:
        """Drop the oldest segment if the policy allows it. → whether room was made."""
        usage = self._store.usage()
        if (
            self.policy is not AuditFullPolicy.OVERWRITE_EXPORTED
            or usage.segments < 2
            or usage.oldest_last_seq > self.exported_through
        ):
            return False
        first, last, base_seq, base_prev = await self._store.drop_oldest()
        self.base_seq, self.base_prev = base_seq, bytes.fromhex(base_prev)
        await self._set_meta(base_seq=str(base_seq), base_prev=base_prev)
        log.warning("audit_records_dropped", first=first, last=last, reason=reason)
        self._note(
            EventType.AUDIT_FULL,
            Outcome.SUCCESS,
            policy=self.policy.value,
            action=f"dropped exported records {first}-{last}",
            reason=reason,
        )
        return True

    async def apply_retention(self) -> None:
        """Drop exported segments whose newest record is older than the retention."""
        if not self._retention_days:
            return
        cutoff = (
            (self._clock.now() - dt.timedelta(days=self._retention_days))
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z")
        )
        while True:
            usage = self._store.usage()
            if not usage.oldest_last_time or usage.oldest_last_time >= cutoff:
                return
            if not await self.drop_for_room(reason="retention"):
                return

    async def mark_exported(self, through: int) -> None:
        """Records up to here are safe elsewhere (an export, a SIEM that acknowledged)."""
        if through > self.exported_through:
            self.exported_through = through
            await self._set_meta(exported_through=str(through))

    async def _meta(self) -> dict[str, str]:
        if self._state is None:
            return {}

        def tx(conn: StateConnection) -> dict[str, str]:
            return {
                str(k): str(v)
                for k, v in conn.execute("SELECT key, value FROM audit_meta").fetchall()
            }

        return await self._state.run(tx)

    async def _set_meta(self, **values: str) -> None:
        if self._state is None:
            return

        def tx(conn: StateConnection) -> None:
            for k, v in values.items():
                conn.execute(
                    "INSERT INTO audit_meta (key, value) VALUES (?, ?) ON CONFLICT (key)"
                    " DO UPDATE SET value = excluded.value",
                    (k, v),
                )

        await self._state.run(tx)
