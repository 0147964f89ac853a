"""The audit log format (SPEC L-1, L-2; FAU_GEN.1/2): the closed event catalogue, the
record, its canonical encoding, the hash chain, the on-disk frames and verification.

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
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

GENESIS = bytes(32)


class EventType(enum.Enum):
    """The closed catalogue. Values are stable: they go to the SIEM and into exports."""

    # FAU_GEN.1: start-up and shutdown of the audit function; the store itself
    AUDIT_START = "audit.start"
    AUDIT_STOP = "audit.stop"
    AUDIT_TAIL_REPAIRED = "audit.tail_repaired"  # a torn tail after a power cut, cut off
    AUDIT_FULL = "audit.full"  # L-5: capacity reached, the policy applied
    AUDIT_READ = "audit.read"  # who queried or exported the log
    AUDIT_CHECKPOINT = "audit.checkpoint"  # a signed (seq, hash) stored outside the log
    AUDIT_INTEGRITY = "audit.integrity"  # the chain or its checkpoint failed verification
    # FIA_UAU.1 / FIA_UID.1 / FIA_AFL.1 (issue 5 emits these)
    AUTH_LOGIN = "auth.login"
    AUTH_LOGOUT = "auth.logout"
    AUTH_LOCKOUT = "auth.lockout"
    AUTH_UNLOCK = "auth.unlock"
    AUTH_FLOOD = "auth.flood"
    SESSION_FAILURE = "session.failure"  # FTP_ITC.1 / FTP_TRP.1: a trusted channel failed
    # FMT_SMF.1 / FMT_SMR.1
    MANAGEMENT = "management"  # use of a management function, settings change
    ROLE_CHANGE = "role.change"
    # FPT_STM.1
    TIME_CHANGE = "time.change"
    # FDP_ACF.1: job completion (issue 7)
    JOB_COMPLETE = "job.complete"
    # E-3 / S-1: a job-store object deleted (by its owner, a policy, or a purge) and the
    # crypto-erase of the whole store
    STORE_DELETE = "store.delete"
    STORE_PURGE = "store.purge"
    STORE_INTEGRITY = "store.integrity"  # a stored object failed authentication
    # FPT_TUD_EXT.1 / FPT_TST_EXT.1 (issue 8)
    FIRMWARE_UPDATE = "firmware.update"
    FIRMWARE_VERIFY = "firmware.verify"
    SELF_TEST = "self_test"
    # FDP_RIP / sanitization (issues 6, 10)
    SANITIZE = "sanitize"
    # FCS_CKM: the key chain
    KEYS_PROVISION = "keys.provision"
    KEYS_UNLOCK = "keys.unlock"  # master key unwrapped at start, or the chain found locked
    KEYS_SOFTWARE_MODE = "keys.software_mode"
    KEYS_BACKUP = "keys.backup"
    KEYS_RESTORE = "keys.restore"
    KEYS_ROTATE = "keys.rotate"
    KEYS_DESTROY = "keys.destroy"
    SECRET_SET = "secret.set"  # noqa: S105 (an event name)
    SECRET_DELETE = "secret.delete"  # noqa: S105
    # FFW / IP filter (issue 9)
    NETFILTER_CHANGE = "netfilter.change"
    NETFILTER_REFUSED = "netfilter.refused"  # summary of refused connections
    # remote / maintenance sessions
    MAINTENANCE_SESSION = "maintenance.session"


@dataclass(frozen=True)
class EventDoc:
    """What an event type records, for people: README's catalogue is generated from these
    (tools/event_catalogue.py), so the documentation cannot drift from the code."""

    when: str
    sfr: str  # the HCD cPP requirements it serves


CATALOGUE: dict[EventType, EventDoc] = {
    EventType.AUDIT_START: EventDoc(
        "the audit function started; whether the chain was found intact", "FAU_GEN.1"
    ),
    EventType.AUDIT_STOP: EventDoc("the audit function stopped (a clean shutdown)", "FAU_GEN.1"),
    EventType.AUDIT_TAIL_REPAIRED: EventDoc(
        "a torn tail (a power cut during a write) was cut off at start", "FAU_STG.1"
    ),
    EventType.AUDIT_FULL: EventDoc(
        "capacity reached and the configured policy applied", "FAU_STG_EXT.1"
    ),
    EventType.AUDIT_READ: EventDoc("the log was queried or exported", "FAU_SAR.1"),
    EventType.AUDIT_CHECKPOINT: EventDoc(
        "a checkpoint (sequence, chain hash) signed by the device identity was stored", "FAU_STG.1"
    ),
    EventType.AUDIT_INTEGRITY: EventDoc(
        "the chain, or the checkpoint that vouches for it, failed verification (at start, "
        "or by a later verify); each distinct problem once",
        "FAU_STG.1",
    ),
    EventType.AUTH_LOGIN: EventDoc(
        "a login, successful or not (the object is the name typed)", "FIA_UAU.1, FIA_UID.1"
    ),
    EventType.AUTH_LOGOUT: EventDoc("a session was ended by its user", "FIA_UAU.1"),
    EventType.AUTH_LOCKOUT: EventDoc("an account was locked after failed attempts", "FIA_AFL.1"),
    EventType.AUTH_UNLOCK: EventDoc("an account was unlocked by an administrator", "FIA_AFL.1"),
    EventType.AUTH_FLOOD: EventDoc(
        "a password-guessing or request flood was detected", "FIA_AFL.1"
    ),
    EventType.SESSION_FAILURE: EventDoc(
        "a trusted channel failed: SIEM connection or TLS handshake, mail or trap delivery,"
        " an alert expired undelivered, a refused IPC peer (counted per kind)",
        "FTP_ITC.1, FTP_TRP.1",
    ),
    EventType.MANAGEMENT: EventDoc(
        "a management function was used or a setting changed", "FMT_SMF.1, FMT_MTD.1"
    ),
    EventType.ROLE_CHANGE: EventDoc(
        "an account was created (the first administrator included) or removed; an "
        "administrator recovery was requested or completed",
        "FMT_SMR.1",
    ),
    EventType.TIME_CHANGE: EventDoc(
        "the wall clock stepped against the monotonic clock (beyond 2 s)", "FPT_STM.1"
    ),
    EventType.JOB_COMPLETE: EventDoc(
        "a stored job was output (read to print or send), printed, or deleted by request",
        "FDP_ACF.1",
    ),
    EventType.STORE_DELETE: EventDoc(
        "a job-store object was crypto-erased (request, retention, print, orphan)", "FDP_RIP.1"
    ),
    EventType.STORE_PURGE: EventDoc("the whole job store was crypto-erased", "FDP_RIP.1"),
    EventType.STORE_INTEGRITY: EventDoc("a stored object failed authentication", "FPT_TST_EXT.1"),
    EventType.FIRMWARE_UPDATE: EventDoc(
        "a firmware update was tried, staged or committed", "FPT_TUD_EXT.1"
    ),
    EventType.FIRMWARE_VERIFY: EventDoc(
        "firmware was verified (at boot, on demand)", "FPT_TUD_EXT.1"
    ),
    EventType.SELF_TEST: EventDoc(
        "the power-on self-tests ran: every test that passed, the first that failed",
        "FPT_TST_EXT.1",
    ),
    EventType.SANITIZE: EventDoc(
        "a sanitization or purge started, ended or was refused", "FDP_RIP.1"
    ),
    EventType.KEYS_PROVISION: EventDoc(
        "this start created the key chain (master, wrapping and identity keys)", "FCS_CKM.1"
    ),
    EventType.KEYS_UNLOCK: EventDoc(
        "the master key was unwrapped at start, or the chain found locked", "FCS_CKM.1"
    ),
    EventType.KEYS_SOFTWARE_MODE: EventDoc("the board has no TPM: keys in software", "FCS_CKM.1"),
    EventType.KEYS_BACKUP: EventDoc("the key chain was backed up", "FCS_CKM.1"),
    EventType.KEYS_RESTORE: EventDoc("the key chain was restored from a backup", "FCS_CKM.1"),
    EventType.KEYS_ROTATE: EventDoc("the master key was rotated", "FCS_CKM.1"),
    EventType.KEYS_DESTROY: EventDoc(
        "the key chain was destroyed (crypto-erase of every secret and account)", "FCS_CKM.4"
    ),
    EventType.SECRET_SET: EventDoc("a stored secret was set (never its value)", "FCS_CKM.1"),
    EventType.SECRET_DELETE: EventDoc("a stored secret was deleted", "FCS_CKM.4"),
    EventType.NETFILTER_CHANGE: EventDoc(
        "the IP filter changed (allow/deny lists, mode, bans), or was changed behind the "
        "daemon's back",
        "FFW_RUL_EXT.1",
    ),
    EventType.NETFILTER_REFUSED: EventDoc(
        "a summary of connections the filter refused", "FFW_RUL_EXT.1"
    ),
    EventType.MAINTENANCE_SESSION: EventDoc(
        "a service engineer's session started or ended (logout, timeout, ended by the "
        "administrator)",
        "FAU_GEN.1",
    ),
}


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


class _CheckpointLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    checkpoint: SignedCheckpoint


def checkpoint_digest(seq: int, chained: bytes) -> bytes:
    return hashlib.sha256(
        b"mfpsecd audit checkpoint v1\0" + seq.to_bytes(8, "big") + chained
    ).digest()


def checkpoint_line(cp: SignedCheckpoint) -> bytes:
    """The last line of an export."""
    return msgspec.json.encode(_CheckpointLine(cp))


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


# ---------------------------------------------------------------- on-disk frames

_LEN = struct.Struct(">I")
MAX_RECORD_BYTES = 64 * 1024


def frame(payload: bytes) -> bytes:
    """u32 length (big-endian) | payload | u32 CRC-32 of the payload."""
    return _LEN.pack(len(payload)) + payload + _LEN.pack(zlib.crc32(payload))


def _frame_at(view: memoryview, pos: int) -> tuple[bytes, int] | str:
    """The payload of a valid frame starting at pos and where it ends, or why not."""
    if len(view) - pos < _LEN.size:
        return "partial frame header"
    (length,) = _LEN.unpack_from(view, pos)
    end = pos + _LEN.size + length + _LEN.size
    if length == 0 or length > MAX_RECORD_BYTES:
        return f"implausible frame length {length}"
    if end > len(view):
        return "frame runs past the end of the file"
    payload = bytes(view[pos + _LEN.size : pos + _LEN.size + length])
    (crc,) = _LEN.unpack_from(view, end - _LEN.size)
    if zlib.crc32(payload) != crc:
        return "frame checksum mismatch"
    return payload, end


def scan(data: bytes | memoryview) -> tuple[list[bytes], int, str]:
    """→ (payloads, end of the last good frame, why the file does not end there or "").

    A damaged frame followed by good ones is skipped over (the chain check then reports
    the gap where it was); only damage with no good frame after it is a torn tail."""
    view = memoryview(data)
    out: list[bytes] = []
    pos = good_end = 0
    why = ""
    while pos < len(view):
        found = _frame_at(view, pos)
        if isinstance(found, str):
            why = why or found
            resync = next(
                (
                    p
                    for p in range(pos + 1, len(view) - 2 * _LEN.size)
                    if not isinstance(_frame_at(view, p), str)
                ),
                None,
            )
            if resync is None:
                return out, good_end, found
            pos = resync
            continue
        out.append(found[0])
        pos = good_end = found[1]
    return out, good_end, why


_checkpoint_line = msgspec.json.Decoder(_CheckpointLine)


def records_of_file(data: bytes) -> tuple[list[bytes], SignedCheckpoint | None, str]:
    """The records of a device log file (frames) or an export (one record per line and
    a signed checkpoint as the last line), the checkpoint, and what was unreadable."""
    if data.startswith(b"{"):
        lines = [line for line in data.split(b"\n") if line]
        checkpoint = None
        if lines and lines[-1].startswith(b'{"checkpoint":'):
            try:
                checkpoint = _checkpoint_line.decode(lines.pop()).checkpoint
            except msgspec.DecodeError:
                return lines, None, "the checkpoint line is damaged"
        return lines, checkpoint, ""
    payloads, end, why = scan(data)
    if end < len(data):
        return payloads, None, f"unreadable from byte {end}: {why}"
    return payloads, None, ""
