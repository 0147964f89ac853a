"""Typed calls of io.mfpsecd.Wipe."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from mfpsecd.varlink.client import Connection
from mfpsecd.wipe import api as wipe

_targets = msgspec.json.Decoder(wipe.Targets)
_job = msgspec.json.Decoder(wipe.Job)
_jobs = msgspec.json.Decoder(wipe.Jobs)
_certificate = msgspec.json.Decoder(wipe.Certificate)
_verdict = msgspec.json.Decoder(wipe.CertificateVerdict)
_plan = msgspec.json.Decoder(wipe.PurgePlan)

_IFACE = "io.mfpsecd.Wipe."


class WipeClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def targets(self) -> list[wipe.Target]:
        return _targets.decode(self._conn.call(_IFACE + "ListTargets")).targets

    def start(self, target: str, mode: int, password: bytearray | None) -> wipe.Job:
        """password: the logged-in caller's, again (zeroed once sent); None for root
        without a session."""
        params: dict[str, object] = {"target": target, "mode": mode}
        if password is None:
            return _job.decode(self._conn.call(_IFACE + "Start", params))
        params["password"] = password
        return _job.decode(self._conn.call_secret(_IFACE + "Start", params, password))

    def plan_purge(self, target: str, level: wipe.Level, method: str = "") -> wipe.PurgePlan:
        return _plan.decode(self._conn.call(_IFACE + "PlanPurge", {
            "target": target, "level": level.value, "method": method}))

    def purge(self, target: str, level: wipe.Level, password: bytearray | None, *,
              mode: int = 1, confirm: bool = False, verify_all: bool = False,
              method: str = "") -> wipe.Job:
        params: dict[str, object] = {"target": target, "level": level.value, "mode": mode,
                                     "confirm": confirm, "verify_all": verify_all,
                                     "method": method}
        if password is None:
            return _job.decode(self._conn.call(_IFACE + "Purge", params))
        params["password"] = password
        return _job.decode(self._conn.call_secret(_IFACE + "Purge", params, password))

    def jobs(self) -> list[wipe.Job]:
        return _jobs.decode(self._conn.call(_IFACE + "ListJobs")).jobs

    def job(self, job_id: str) -> wipe.Job:
        return _job.decode(self._conn.call(_IFACE + "GetJob", {"job": job_id}))

    def watch(self, job_id: str) -> Iterator[wipe.Job]:
        """The job's state now and at each change; ends once it has ended."""
        for raw in self._conn.call_more(_IFACE + "Watch", {"job": job_id}):
            yield _job.decode(raw)

    def cancel(self, job_id: str) -> wipe.Job:
        return _job.decode(self._conn.call(_IFACE + "Cancel", {"job": job_id}))

    def certificate(self, job_id: str, fmt: wipe.CertificateFormat = wipe.CertificateFormat.JSON
                    ) -> wipe.Certificate:
        return _certificate.decode(self._conn.call(
            _IFACE + "GetCertificate", {"job": job_id, "format": fmt.value}))

    def verify_certificate(self, document: str) -> wipe.CertificateVerdict:
        return _verdict.decode(self._conn.call(_IFACE + "VerifyCertificate",
                                               {"document": document}))
