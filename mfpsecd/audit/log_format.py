"""The audit log format (SPEC L-1, L-2; FAU_GEN.1/2): the record, its canonical encoding,
the hash chain, signed checkpoints and verification (the event catalogue is events.py,
the on-disk frames frames.py).

This is an interface, not an implementation detail: exported logs and the device's log
file are verified with exactly this code by `mfpsec audit verify FILE`, without the
daemon. Pure functions on bytes: no I/O, no clock.

Chain: hash(n) = SHA-256(hash(n-1) || canonical(record n)), hash(0) = 32 zero bytes, and
every record carries the previous hash and its sequence number. Verification walks the
records in order and names the first sequence number where the chain breaks and why:
a modified record (its hash no longer links), a deleted or inserted one (a gap or a
repeat in the sequence), records out of order, or a log that ends before what a
checkpoint vouched for (truncation).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from mfpsecd.audit.events import EventType

GENESIS = bytes(32)


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


class Subject(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Who: the authenticated user and role when there is one, and always the origin."""

    # "daemon", "panel", "cli", "system" (root/daemon uid), "network", "local" (a local
    # peer the IPC socket refused)
    origin: str
    user: str = ""
    role: str = ""
    uid: int = -1
    pid: int = -1
    address: str = ""


DAEMON = Subject(origin="daemon")

Detail = str | int | float | bool


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # seq and prev first: the canonical form starts {"seq":N,"prev":"<64 hex>", so a
    # verifier reads both without parsing the record.
    seq: int
    prev: str  # hex of the previous record's chain hash
    time: str  # RFC 3339 UTC with microseconds
    type: EventType
    outcome: Outcome
    subject: Subject
    object: str
    details: dict[str, Detail]


# Struct fields in declaration order, dict keys sorted, no whitespace: one byte string per
# record, whatever built it.
_canonical = msgspec.json.Encoder(order="deterministic")
_record = msgspec.json.Decoder(Record)


def canonical(record: Record) -> bytes:
    """The bytes that are hashed (and stored): sorted keys, no whitespace."""
    return _canonical.encode(record)


def decode(data: bytes | memoryview) -> Record:
    return _record.decode(data)


def chain_hash(prev: bytes, encoded: bytes) -> bytes:
    return hashlib.sha256(prev + encoded).digest()


@dataclass(frozen=True)
class Checkpoint:
    """A vouched-for position: the log holds at least up to seq, ending in this hash."""

    seq: int
    hash: bytes


class SignedCheckpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A checkpoint as stored outside the log and appended to exports: the device
    identity key (ECDSA P-256, in the TPM) signs checkpoint_digest(seq, hash)."""

    seq: int
    hash: str  # hex
    time: str
    signature: str = ""  # hex DER ECDSA; empty when no key could sign (keys locked)
    public_key: str = ""  # PEM of the signing key: compare its fingerprint with the device's

    @property
    def position(self) -> Checkpoint:
        return Checkpoint(self.seq, bytes.fromhex(self.hash))


class CheckpointLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    checkpoint: SignedCheckpoint


def checkpoint_digest(seq: int, chained: bytes) -> bytes:
    return hashlib.sha256(
        b"mfpsecd audit checkpoint v1\0" + seq.to_bytes(8, "big") + chained
    ).digest()


def checkpoint_line(cp: SignedCheckpoint) -> bytes:
    """The last line of an export."""
    return msgspec.json.encode(CheckpointLine(cp))


def signer_fingerprint(cp: SignedCheckpoint) -> str:
    """SHA-256 (hex) of the signing key's DER, as `mfpsec keys identity` prints it; ""
    for an unsigned checkpoint or an unreadable key."""
    if not cp.public_key:
        return ""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 (rare path)

    try:
        key = serialization.load_pem_public_key(cp.public_key.encode())
    except ValueError:
        return ""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def checkpoint_problem(
    cp: SignedCheckpoint, trusted: frozenset[str] | None, *, signed: bool = True
) -> tuple[str, str]:
    """(problem, detail) when cp cannot vouch for the log, ("", "") when it can: it must
    be signed (unless signed=False: a log kept where nothing signs), the signature must
    verify, and (trusted: the fingerprints of this device's identity keys, now and
    earlier; None when they cannot be known) the key must be one of them. A key the
    checkpoint carries proves nothing by itself."""
    if not cp.signature and not signed:
        return "", ""
    if not cp.signature:
        return (
            "checkpoint unsigned",
            "the newest checkpoint carries no signature, so it "
            "vouches for nothing (made while the key chain was locked, or forged)",
        )
    if not signature_ok(cp):
        return "checkpoint forged", "the checkpoint signature does not verify"
    fingerprint = signer_fingerprint(cp)
    if trusted is not None and fingerprint not in trusted:
        return (
            "checkpoint foreign",
            f"signed by key {fingerprint}, which is not this device's identity key, now or earlier",
        )
    return "", ""


def signature_ok(cp: SignedCheckpoint) -> bool:
    """The checkpoint's signature verifies with its public key (whose fingerprint the
    auditor compares with the device identity's)."""
    if not cp.signature or not cp.public_key:
        return False
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 (offline path only)
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: PLC0415

    try:
        key = serialization.load_pem_public_key(cp.public_key.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(
            bytes.fromhex(cp.signature),
            checkpoint_digest(cp.seq, bytes.fromhex(cp.hash)),
            ec.ECDSA(utils.Prehashed(hashes.SHA256())),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    last_seq: int
    last_hash: bytes
    problem: str = ""  # "modified", "deleted", "inserted", "reordered", "truncated", ...
    at_seq: int = 0  # where (the first bad record's sequence number, or the expected one)
    detail: str = ""


_HEAD = b'{"seq":'
_PREV = b',"prev":"'


def head(raw: bytes) -> tuple[int, str] | None:
    """(seq, prev hex) from the fixed start of a canonical record, or None."""
    if not raw.startswith(_HEAD):
        return None
    comma = raw.find(b",", len(_HEAD), len(_HEAD) + 21)
    if comma < 0 or raw[comma : comma + len(_PREV)] != _PREV:
        return None
    start = comma + len(_PREV)
    if raw[start + 64 : start + 65] != b'"':
        return None
    try:
        return int(raw[len(_HEAD) : comma]), raw[start : start + 64].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None


def verify(
    encoded_records: Iterable[bytes],
    *,
    first_seq: int = 1,
    first_prev: bytes = GENESIS,
    checkpoint: Checkpoint | None = None,
) -> Verdict:
    """Walk the records in order; the first break is reported and the walk stops.

    The chain hash covers every byte of every record, so any change to a record breaks
    the link to the next one; only seq and prev are read, from the record's fixed start."""
    prev, expected, count = first_prev, first_seq, 0
    last_seq = first_seq - 1
    records = iter(encoded_records)
    for raw in records:
        parsed = head(raw)
        if parsed is None:
            return Verdict(
                False,
                count,
                last_seq,
                prev,
                "unreadable",
                expected,
                f"record after {last_seq} is not a canonical audit record",
            )
        seq, prev_hex = parsed
        if seq != expected:
            kind = "inserted" if seq < expected else "deleted"
            if seq > expected:
                following = next(records, None)  # one record of look-ahead: swap or gap?
                if following is not None and (head(following) or (0, ""))[0] == expected:
                    kind = "reordered"
            return Verdict(
                False,
                count,
                last_seq,
                prev,
                kind,
                expected,
                f"expected record {expected}, found {seq}",
            )
        if prev_hex != prev.hex():
            where = seq - 1 if seq > first_seq else seq
            return Verdict(
                False,
                count,
                last_seq,
                prev,
                "modified",
                where,
                f"record {seq} does not link to record {seq - 1}: one of them "
                "was changed or replaced",
            )
        prev = hashlib.sha256(prev + raw).digest()
        last_seq, expected, count = seq, seq + 1, count + 1
        if checkpoint is not None and seq == checkpoint.seq and prev != checkpoint.hash:
            return Verdict(
                False,
                count,
                last_seq,
                prev,
                "modified",
                seq,
                "the chain differs from the signed checkpoint",
            )
    if checkpoint is not None and last_seq < checkpoint.seq:
        return Verdict(
            False,
            count,
            last_seq,
            prev,
            "truncated",
            last_seq + 1,
            f"the log ends at record {last_seq}; a checkpoint vouches for {checkpoint.seq}",
        )
    return Verdict(True, count, last_seq, prev)
