"""Durable state in SQLite: WAL, synchronous=FULL, versioned migrations, one worker thread.

All access goes through one thread so the connection is never shared between threads and
commits (each an fsync with synchronous=FULL) never block the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateConnection

log = structlog.get_logger("mfpsecd.state")

T = TypeVar("T")

# Append only: each entry moves the schema one version up and is never edited once landed.
MIGRATIONS: tuple[str, ...] = (
    # 1: daemon runs, so status can say how the previous one ended (power cut or clean stop)
    """
    CREATE TABLE boots (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        stopped_at TEXT,
        version TEXT NOT NULL
    );
    """,
    # 2: the key chain (K-1): TPM-held keys as their wrapped blobs, master key generations
    # (RSA-OAEP-wrapped), secrets sealed under a generation, and key-chain facts.
    """
    CREATE TABLE tpm_keys (
        role TEXT PRIMARY KEY CHECK (role IN ('wrapping', 'identity')),
        backend TEXT NOT NULL,
        public BLOB NOT NULL,
        private BLOB NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE master_keys (
        generation INTEGER PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('active', 'pending')),
        wrapped BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX master_keys_one_active ON master_keys (status) WHERE status = 'active';
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        generation INTEGER NOT NULL REFERENCES master_keys (generation),
        nonce BLOB NOT NULL,
        sealed BLOB NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX secrets_by_generation ON secrets (generation);
    CREATE TABLE key_facts (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 3: signed audit checkpoints, kept outside the log so a truncated log is detected
    """
    CREATE TABLE audit_checkpoints (
        seq INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        time TEXT NOT NULL,
        signature TEXT NOT NULL,
        public_key TEXT NOT NULL
    );
    """,
    # 4: audit log bookkeeping: where the log starts after old segments were dropped
    # (base_seq, base_prev) and how far it has been exported (exported_through)
    """
    CREATE TABLE audit_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 5: user accounts (the password verifiers are sealed in the secret store), their
    # lockout state (written before a failed login is answered: survives a power cut),
    # and the administrator's authentication policy
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        password_set_at REAL NOT NULL,
        temporary INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        locked_until REAL NOT NULL DEFAULT 0,
        last_login_at TEXT NOT NULL DEFAULT '',
        card_fingerprint TEXT UNIQUE,
        totp_enabled INTEGER NOT NULL DEFAULT 0,
        totp_last_step INTEGER NOT NULL DEFAULT -1
    );
    CREATE TABLE auth_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 6: sanitization jobs (W-2, W-5): the plan, the random passes' stream keys (they only
    # regenerate a pattern; they protect nothing), and the durable checkpoint a power cut
    # resumes from; the signed certificate once finished (W-4)
    """
    CREATE TABLE wipe_jobs (
        id TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        mode INTEGER NOT NULL,
        plan TEXT NOT NULL,
        media TEXT NOT NULL,
        operator TEXT NOT NULL,
        state TEXT NOT NULL,
        step INTEGER NOT NULL DEFAULT 0,
        offset INTEGER NOT NULL DEFAULT 0,
        size INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT NOT NULL DEFAULT '',
        resumed INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        certificate TEXT NOT NULL DEFAULT ''
    );
    CREATE UNIQUE INDEX wipe_jobs_one_running ON wipe_jobs (target) WHERE state = 'running'
    """,
    # 7: the encrypted job store (E-1, E-3): one row per object, its own data key sealed
    # under the master key (deleting the row is the crypto-erase), its owner and the
    # deletion policy that applies to it
    """
    CREATE TABLE store_objects (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        job TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        sealed_size INTEGER NOT NULL,
        generation INTEGER NOT NULL REFERENCES master_keys (generation),
        nonce BLOB NOT NULL,
        sealed_key BLOB NOT NULL,
        created_at TEXT NOT NULL,
        expires_at REAL
    );
    CREATE INDEX store_objects_by_owner ON store_objects (owner);
    CREATE INDEX store_objects_by_expiry ON store_objects (expires_at)
        WHERE expires_at IS NOT NULL;
    CREATE INDEX store_objects_by_generation ON store_objects (generation)
    """,
    # 8: the administrator's prohibition of firmware rewriting (F-3): who set it, when
    """
    CREATE TABLE firmware_lock (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        locked INTEGER NOT NULL,
        by_user TEXT NOT NULL,
        at TEXT NOT NULL
    )
    """,
    # 9: the IP filter policy (N-1..N-3): permitted and refused ranges, the quick filter,
    # the services switched on (JSON, one row)
    """
    CREATE TABLE net_policy (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        policy TEXT NOT NULL
    )
    """,
    # 10: the device identity's history: one link per change of identity key, signed by
    # the new key and naming the old one (core.identity_history)
    """
    CREATE TABLE identity_links (
        seq INTEGER PRIMARY KEY,
        document TEXT NOT NULL
    )
    """,
    # 11: zeros written through the WAL at a checkpoint, so that its freed blocks hold
    # no deleted row (see SqliteState._checkpoint); always empty between checkpoints
    """
    CREATE TABLE wal_scrub (zeros BLOB NOT NULL)
    """,
    # 12: a stored object's job id and document name, sealed under the object's own key
    # (services.jobstore); the plaintext columns are then left empty
    """
    ALTER TABLE store_objects ADD COLUMN meta_nonce BLOB;
    ALTER TABLE store_objects ADD COLUMN meta_sealed BLOB
    """,
    # 13: the fingerprint of the identity key the TPM was last seen to hold, sealed under
    # the master key: what a restore may vouch for in the identity history
    """
    CREATE TABLE identity_attestation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL REFERENCES master_keys (generation),
        nonce BLOB NOT NULL,
        sealed BLOB NOT NULL
    )
    """,
    # 14: the wrapping key bound to PCR values (core.pcr_policy): one row per binding, the
    # running firmware's and the one an update prepared for the next boot. The tpm_keys
    # row keeps the key's first public area (its fingerprint) and, once bound, no blob.
    """
    CREATE TABLE key_bindings (
        pcrs TEXT NOT NULL,
        pcr_values BLOB NOT NULL,
        public BLOB NOT NULL,
        private BLOB NOT NULL,
        purpose TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (pcrs, pcr_values)
    )
    """,
    # 15: failed logins of names that are no account, so that after a restart an unknown
    # name still answers as a real one would (locked after as many failures); the name is
    # kept as its SHA-256 only, at most services.auth.MAX_PHANTOMS of them
    """
    CREATE TABLE auth_phantoms (
        name_hash BLOB PRIMARY KEY,
        failures INTEGER NOT NULL,
        locked_until REAL NOT NULL,
        seen INTEGER NOT NULL
    )
    """,
    # 16: notifications a rule fired, kept until every channel took them (services.
    # alert_outbox): an outage of the mail server or the network, a restart, or the boot
    # unit (which has no network) loses none; the audit record travels as its JSON
    """
    CREATE TABLE alert_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule TEXT NOT NULL,
        record BLOB NOT NULL,
        suppressed INTEGER NOT NULL,
        first_suppressed TEXT NOT NULL,
        channels TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL
    )
    """,
    # 17: the IP filter's lists as a log (ipfilter.service): a snapshot row per list (its
    # ranges, one per line, in the order entered), then one row per single add or remove,
    # so that an edit writes one row and a whole list one row, whatever its length; the
    # policy row keeps the quick filter and the services. (A new row's seq is above every
    # row there, without AUTOINCREMENT's bookkeeping.)
    """
    CREATE TABLE net_ranges (
        seq INTEGER PRIMARY KEY,
        list TEXT NOT NULL CHECK (list IN ('allow', 'deny')),
        op TEXT NOT NULL CHECK (op IN ('snapshot', 'add', 'remove')),
        packed TEXT NOT NULL
    );
    INSERT INTO net_ranges (list, op, packed)
        SELECT 'allow', 'snapshot', (SELECT group_concat(value, char(10)) FROM (
            SELECT j.value FROM net_policy, json_each(net_policy.policy, '$.allow') AS j
            ORDER BY CAST(j.key AS INTEGER)))
        FROM net_policy WHERE json_array_length(net_policy.policy, '$.allow') > 0;
    INSERT INTO net_ranges (list, op, packed)
        SELECT 'deny', 'snapshot', (SELECT group_concat(value, char(10)) FROM (
            SELECT j.value FROM net_policy, json_each(net_policy.policy, '$.deny') AS j
            ORDER BY CAST(j.key AS INTEGER)))
        FROM net_policy WHERE json_array_length(net_policy.policy, '$.deny') > 0;
    UPDATE net_policy SET policy = json_remove(policy, '$.allow', '$.deny')
    """,
    # 18: why a sanitization job failed, typed (wipe.jobs): the error's wire name and its
    # parameters, beside the text; rows from before get the wire name the text starts with.
    """
    ALTER TABLE wipe_jobs ADD COLUMN error_code TEXT NOT NULL DEFAULT '';
    ALTER TABLE wipe_jobs ADD COLUMN error_params TEXT NOT NULL DEFAULT '{}';
    UPDATE wipe_jobs SET error_code = substr(error, 1, instr(error || ' ', ' ') - 1)
        WHERE error LIKE 'io.mfpsecd.%' OR error LIKE 'org.varlink.%';
    """,
    # 19: the S-1 posture (system.posture): each item's state and setting as last seen,
    # and since when; and whether each user's password met the password rules in force
    # when it was last checked (at a login or when set), named by the rules' digest.
    """
    CREATE TABLE posture_history (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        setting TEXT NOT NULL,
        since TEXT NOT NULL
    );
    ALTER TABLE users ADD COLUMN rules_checked TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN rules_met INTEGER NOT NULL DEFAULT 1
    """,
    # 20: the USB port policy an administrator set (usb.service, U-4): the [usb] section
    # as JSON, who set it and when; without a row the configuration's applies.
    """
    CREATE TABLE usb_policy (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        policy TEXT NOT NULL,
        by_user TEXT NOT NULL,
        at TEXT NOT NULL
    )
    """,
    # 21: each job-store object's virus scan (scan.service, V-1..V-3): "clean",
    # "not-scanned" (stored when a scan failed, scan.on_failure), "" (stored unscanned:
    # no engine configured, or before scanning existed)
    """
    ALTER TABLE store_objects ADD COLUMN scan TEXT NOT NULL DEFAULT ''
    """,
    # 22: the fleet agent's manage window (remote.service, R-5): until when (POSIX
    # seconds, 0: monitor mode), who opened it and when; kept so it closes on time across
    # a restart.
    """
    CREATE TABLE remote_manage (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        until REAL NOT NULL,
        by_user TEXT NOT NULL,
        opened REAL NOT NULL
    )
    """,
    # 23: the monitoring settings an administrator set (monitoring.service): the
    # [[audit.forward]], [notify] and [snmp] sections as JSON, who set them and when;
    # without a row the configuration's apply.
    """
    CREATE TABLE monitoring_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        document TEXT NOT NULL,
        by_user TEXT NOT NULL,
        at TEXT NOT NULL
    )
    """,
)


def _apply_migrations(conn: sqlite3.Connection) -> int:
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    if current > len(MIGRATIONS):
        raise MfpsecError(
            ErrorCode.STATE_UNAVAILABLE,
            reason=f"schema version {current} is newer than this daemon ({len(MIGRATIONS)})",
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        # One transaction per migration; executescript would commit implicitly.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


class SqliteState:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="state-db")
        self._conn: sqlite3.Connection | None = None
        self._version = 0

    @property
    def schema_version(self) -> int:
        return self._version

    def _open(self) -> None:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=True, timeout=5.0
            )
        except sqlite3.Error as exc:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason=f"open: {exc}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")
            (check,) = conn.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason=f"integrity: {check}")
            self._version = _apply_migrations(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason=f"{exc}") from None
        except BaseException:
            conn.close()
            raise
        self._path.chmod(0o600)
        self._conn = conn

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    def _transaction(self, fn: Callable[[StateConnection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason="state store is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise MfpsecError(ErrorCode.STATE_UNAVAILABLE, reason=f"{exc}") from None
        return result

    async def run(self, fn: Callable[[StateConnection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._transaction, fn
        )

    def _checkpoint(self) -> None:
        """Every frame into the database, then the WAL truncated. secure_delete zeroes a
        deleted row's space in the database file, but the WAL's frames still held the
        row as it was, and truncating only frees those blocks on the filesystem, where an
        attacker holding the disk reads them. So after a RESTART checkpoint (the next
        write starts the WAL again from its beginning) a transaction writes zeros as long
        as the WAL was over the old frames, a second one frees them (zeroed again by
        secure_delete), and only then is the WAL truncated. All of it through SQLite's
        own protocol: concurrent readers stay consistent."""
        conn = self._conn
        if conn is None:
            return
        try:
            self._scrub_and_truncate(conn)
        except sqlite3.Error as exc:
            # Housekeeping after committed transactions: never their failure. The WAL
            # is checkpointed at the next occasion; say that it was not now.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.warning("state_checkpoint_failed", error=str(exc))

    def _scrub_and_truncate(self, conn: sqlite3.Connection) -> None:
        wal = self._path.with_name(self._path.name + "-wal")
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        if busy:
            log.warning("state_wal_scrub_skipped", reason="a reader holds the WAL")
        try:
            size = wal.stat().st_size
        except FileNotFoundError:
            size = 0
        if busy == 0 and size > 0:
            try:
                for statement in (
                    "INSERT INTO wal_scrub (zeros) VALUES (zeroblob(?))",
                    "DELETE FROM wal_scrub",
                ):
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(statement, (size,) if "?" in statement else ())
                    conn.execute("COMMIT")
                conn.execute("PRAGMA wal_checkpoint(RESTART)")
            except sqlite3.Error as exc:  # a full disk: checkpoint anyway, say so
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                log.warning("state_wal_scrub_failed", error=str(exc))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def checkpoint(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._checkpoint)

    def _close(self) -> None:
        if self._conn is not None:
            self._checkpoint()
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
