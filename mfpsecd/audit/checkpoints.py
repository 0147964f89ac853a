"""Signed checkpoints of the audit chain (L-2): the end of the chain signed by the device
identity key and kept outside the log, in the state store, so that a log cut at a frame
boundary or rewritten from some record on is caught even though the rest of its chain
still links. A checkpoint vouches only when its key is one of this device's identity
keys; a key it carries itself proves nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from cryptography.hazmat.primitives import serialization

from mfpsecd.audit import log_format
from mfpsecd.base import identity_keys
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateConnection, StateStore

log = structlog.get_logger("mfpsecd.audit")

# digest → (DER signature, SubjectPublicKeyInfo DER), or None when no key can sign now.
Signer = Callable[[bytes], Awaitable[tuple[bytes, bytes] | None]]
# The fingerprints of the device's identity keys, now and earlier.
Trust = Callable[[], Awaitable[frozenset[str]]]


async def identity_signature(signer: Signer, digest: bytes) -> tuple[bytes, str]:
    """A document's signature by the identity key: (DER signature, PEM public key);
    KeysUnavailable when the key cannot sign now (a document is never left unsigned)."""
    signed = await signer(digest)
    if signed is None:
        raise MfpsecError(
            ErrorCode.KEYS_UNAVAILABLE, reason="the device identity key cannot sign now"
        )
    return signed[0], identity_keys.pem(signed[1])


def truncated(verdict: log_format.Verdict, cp: log_format.SignedCheckpoint) -> log_format.Verdict:
    """The verdict on a log that ends before the record its checkpoint vouches for: cut
    while the daemon was down, at a frame boundary, which only the checkpoint can tell."""
    return log_format.Verdict(
        False,
        verdict.records,
        verdict.last_seq,
        verdict.last_hash,
        "truncated",
        verdict.last_seq + 1,
        f"the log ends at record {verdict.last_seq}; the checkpoint "
        f"of {cp.time} vouches for {cp.seq}",
    )


def _pem(spki_der: bytes) -> str:
    return (
        serialization.load_der_public_key(spki_der)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class Checkpoints:
    """The checkpoints of one log: signed with the injected signer, kept in
    `audit_checkpoints`, judged against the injected trust."""

    def __init__(self, state: StateStore, clock: Clock) -> None:
        self._state = state
        self._clock = clock
        self._signer: Signer | None = None
        self._trust: Trust | None = None

    def set_signer(self, signer: Signer) -> None:
        """The device identity key, once the key chain is up."""
        self._signer = signer

    def set_trust(self, fingerprints: Trust) -> None:
        """The device's identity keys (now and earlier), once the key chain is up: a
        checkpoint signed by any other key vouches for nothing."""
        self._trust = fingerprints

    async def keep(self, seq: int, chained: bytes) -> log_format.SignedCheckpoint | None:
        """Sign record seq's chain hash and store it. None when nothing can sign now: an
        unsigned checkpoint vouches for nothing, and a log whose newest checkpoint is
        unsigned is reported as `checkpoint unsigned`, so a process that cannot sign (the
        key chain locked, the boot unit before the first key exists) adds none; the next
        signed checkpoint covers its records."""
        signed = None
        if self._signer is not None:
            try:
                signed = await self._signer(log_format.checkpoint_digest(seq, chained))
            except MfpsecError as exc:
                log.warning("audit_checkpoint_unsigned", error=exc.code.wire_name)
        if signed is None:
            log.info("audit_checkpoint_skipped", seq=seq, reason="nothing to sign with")
            return None
        cp = log_format.SignedCheckpoint(
            seq=seq,
            hash=chained.hex(),
            time=rfc3339(self._clock, "microseconds"),
            signature=signed[0].hex(),
            public_key=_pem(signed[1]),
        )

        def tx(conn: StateConnection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO audit_checkpoints (seq, hash, time, signature, "
                "public_key) VALUES (?, ?, ?, ?, ?)",
                (cp.seq, cp.hash, cp.time, cp.signature, cp.public_key),
            )

        await self._state.run(tx)
        return cp

    async def latest(self) -> log_format.SignedCheckpoint | None:
        def tx(conn: StateConnection) -> tuple[object, ...] | None:
            return conn.execute(
                "SELECT seq, hash, time, signature, public_key FROM "
                "audit_checkpoints ORDER BY seq DESC LIMIT 1"
            ).fetchone()

        row = await self._state.run(tx)
        if row is None:
            return None
        seq, chained, when, signature, public = (str(x) for x in row)
        return log_format.SignedCheckpoint(int(seq), chained, when, signature, public)

    async def problem(self, cp: log_format.SignedCheckpoint) -> tuple[str, str]:
        """(problem, detail) when cp cannot vouch for the log, ("", "") when it can."""
        return log_format.checkpoint_problem(
            cp, await self._trusted(), signed=self._signer is not None
        )

    async def _trusted(self) -> frozenset[str] | None:
        if self._trust is None:
            return None
        try:
            return await self._trust()
        except MfpsecError as exc:  # the key chain locked: the signature alone is checked
            log.warning("audit_identity_unavailable", error=exc.code.wire_name)
            return None
