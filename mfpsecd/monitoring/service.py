"""The monitoring settings: read, replaced as a whole, reset to the configuration file's.

A change is built in full before anything is swapped (Reporting.prepare), then stored,
then swapped in, under one lock: a refused document changes nothing, and two
administrators changing it at once are served one after the other. Each attempt is an
audit record (management, object "monitoring settings"): what changed, key by key, with
the old and new values, or why it was refused."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mfpsecd.alerts.rules import DEFAULT_RULES
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.model import setting_changes
from mfpsecd.audit.model.setting_changes import Detail
from mfpsecd.audit.service import Auditor
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.config.schema import Config
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateStore
from mfpsecd.monitoring import api, settings_store
from mfpsecd.monitoring.model.document import (
    Sections,
    applied,
    as_document,
    as_sections,
    of_config,
    secret_names,
)
from mfpsecd.monitoring.ports import Reporting, StoredSecrets

OBJECT = "monitoring settings"
CONFIGURATION = "configuration"
ADMINISTRATOR = "administrator"


@dataclass(frozen=True)
class InForce:
    sections: Sections
    by: str  # "" : the configuration file's
    at: str


def default_rules() -> list[api.AlertRule]:
    return [
        api.AlertRule(
            r.name,
            sorted(e.value for e in r.events),
            r.failures_only,
            r.threshold,
            r.window_s,
            r.min_interval_s,
            r.phase,
            r.except_phase,
            r.object,
            r.by,
        )
        for r in DEFAULT_RULES
    ]


class MonitoringService:
    def __init__(
        self,
        cfg: Config,
        state: StateStore,
        *,
        auditor: Auditor,
        clock: Clock,
        reporting: Reporting,
        stored_secrets: StoredSecrets,
        stored: settings_store.Stored | None,
    ) -> None:
        self._file = cfg
        self._state = state
        self._auditor = auditor
        self._clock = clock
        self._reporting = reporting
        self._stored_secrets = stored_secrets
        self._lock = asyncio.Lock()
        self._now = (
            InForce(stored.sections, stored.by, stored.at)
            if stored is not None
            else InForce(of_config(cfg), "", "")
        )

    @property
    def config(self) -> Config:
        """The daemon's configuration with the settings in force."""
        return applied(self._file, self._now.sections)

    async def view(self) -> api.Settings:
        now = self._now
        stored = await self._stored_secrets()
        return api.Settings(
            as_document(now.sections),
            ADMINISTRATOR if now.by else CONFIGURATION,
            now.by,
            now.at,
            default_rules(),
            [api.SecretState(name, name in stored) for name in secret_names(now.sections)],
        )

    async def replace(self, document: api.Document, subject: Subject) -> api.Settings:
        async with self._auditor.event(EventType.MANAGEMENT, subject, OBJECT) as ev:
            ev.details["action"] = "set"
            sections = as_sections(document)
            await self._swap(sections, subject.user or subject.origin, ev.details)
            ev.succeed()
        return await self.view()

    async def reset(self, subject: Subject) -> api.Settings:
        async with self._auditor.event(EventType.MANAGEMENT, subject, OBJECT) as ev:
            ev.details["action"] = "reset"
            await self._swap(of_config(self._file), "", ev.details)
            ev.succeed()
        return await self.view()

    async def _swap(self, sections: Sections, by: str, details: dict[str, Detail]) -> None:
        stored = await self._stored_secrets()
        missing = [n for n in secret_names(sections) if n not in stored]
        if missing:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                f"no such secret: {', '.join(missing)} (mfpsec secrets set NAME)",
                key="secrets",
                reason=f"not stored: {', '.join(missing)}",
            )
        if not self._reporting.running:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason="the daemon is starting")
        async with self._lock:
            commit = await self._reporting.prepare(applied(self._file, sections))
            at = rfc3339(self._clock)
            if by:
                await settings_store.save(self._state, sections, by, at)
            else:
                await settings_store.clear(self._state)
            before, self._now = self._now.sections, InForce(sections, by, at if by else "")
            await commit()
        details.update(setting_changes.as_details(setting_changes.changes(before, sections)))
