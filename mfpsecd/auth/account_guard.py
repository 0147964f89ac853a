"""One account's critical section (A-4): attempts on the same account run one after
another, so N concurrent wrong passwords count exactly N failures and lock once. Audit
records made inside it are written after it is left (before the caller answers): the
records of many attempts then share one group commit instead of queueing one fsync each
behind the lock."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Detail, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.user_store import UserRow, UserStore
from mfpsecd.base.errors import ErrorCode, MfpsecError

_Note = tuple[EventType, Outcome, Subject, str, dict[str, Detail]]
# Audit records held back while this task is inside an account's critical section.
_NOTES: contextvars.ContextVar[list[_Note] | None] = contextvars.ContextVar(
    "mfpsecd_auth_notes", default=None
)


class AccountGuard:
    """The per-account locks, and the audit records deferred while one is held."""

    def __init__(self, users: UserStore, auditor: Auditor) -> None:
        self._users = users
        self._auditor = auditor
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def held(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        notes: list[_Note] = []
        token = _NOTES.set(notes)
        try:
            async with lock:
                yield
        finally:
            _NOTES.reset(token)
            for type_, outcome, subject, obj, details in notes:
                await self._auditor.record(type_, outcome, subject, obj, **details)

    async def record(
        self, type_: EventType, outcome: Outcome, subject: Subject, obj: str, **details: Detail
    ) -> None:
        """An audit record: now, or when this task leaves the account's section."""
        notes = _NOTES.get()
        if notes is None:
            await self._auditor.record(type_, outcome, subject, obj, **details)
        else:
            notes.append((type_, outcome, subject, obj, details))

    async def require(self, name: str) -> UserRow:
        user = await self._users.get(name)
        if user is None:
            raise MfpsecError(ErrorCode.USER_NOT_FOUND, user=name)
        return user
