"""Identification and authentication (SPEC A-1..A-4, A-7, A-9): local accounts, password
logins with lockout, the second factor, password changes under the policy, and the
administrator's management of accounts.

Lockout (A-4) is decided per account under one lock per account: attempts on the same
account run one after another, so N concurrent wrong passwords count exactly N failures
and lock once; attempts after the lock are answered without looking at the password (the
answer says nothing about whether it was right). The counters are written to the state
store (synchronous=FULL) before a failure is answered, so neither a daemon restart nor a
power cut forgets them. Unknown user names get the same treatment from a bounded
in-memory table, and the same Argon2id work, so answers do not tell which names exist.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import math
import os
import re
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NoReturn

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import DAEMON, Detail, Outcome, Subject
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.model import card_certificate, totp
from mfpsecd.auth.model.password_policy import PasswordPolicy, Rule, Violation, violations
from mfpsecd.auth.model.password_record import entries, new_record
from mfpsecd.auth.model.policy import AuthPolicy, after_failure, lock_remaining
from mfpsecd.auth.password_hasher import PasswordHasher
from mfpsecd.auth.ports import CardReader
from mfpsecd.auth.sessions import Seat, Session, SessionTable
from mfpsecd.auth.user_store import UserRow, UserStore, verifier_name
from mfpsecd.base.access import Role
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.clock import Clock, rfc3339
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.core.throttle import Action, Detection, Throttle, ThrottleLimits
from mfpsecd.keys.secrets import SecretKind, SecretStore

log = structlog.get_logger("mfpsecd.auth")

_Note = tuple[EventType, Outcome, Subject, str, dict[str, Detail]]
# Audit records held back while this task is inside an account's critical section.
_NOTES: contextvars.ContextVar[list[_Note] | None] = contextvars.ContextVar(
    "mfpsecd_auth_notes", default=None
)

# Failed logins that count towards a source's password-attack window.
_ATTACK_SIGNS = frozenset(
    {
        ErrorCode.AUTHENTICATION_FAILED,
        ErrorCode.ACCOUNT_LOCKED,
        ErrorCode.CERTIFICATE_REJECTED,
        ErrorCode.CARD_UNUSABLE,
    }
)

USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
TOTP_ROLES = frozenset({Role.ADMINISTRATOR, Role.SERVICE})
TOTP_ISSUER = "mfpsecd"
MAX_PHANTOMS = 4096  # unknown names whose failures are tracked (oldest forgotten first)
DAY_S = 86400.0


def totp_seed_name(user: str) -> str:
    return f"auth.totp.{user}"


@dataclass(frozen=True)
class LoginResult:
    token: str
    session: Session


@dataclass(frozen=True)
class TotpEnrollment:
    uri: str
    secret_base32: str


class AuthService:
    def __init__(
        self,
        users: UserStore,
        secrets: SecretStore,
        hasher: PasswordHasher,
        *,
        sessions: SessionTable,
        auditor: Auditor,
        clock: Clock,
        throttle: Throttle | None = None,
        max_delayed: int = 16,
        card: CardReader | None = None,
        trust_anchors: tuple[x509.Certificate, ...] = (),
    ) -> None:
        self._users = users
        self._secrets = secrets
        self._hasher = hasher
        self.sessions = sessions
        self._auditor = auditor
        self._clock = clock
        self.policy = AuthPolicy()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._setup = asyncio.Lock()
        # Unknown names (by SHA-256) → (failures, locked until), persisted (UserStore).
        self._phantoms: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        self.administrator_exists = False
        self.throttle = throttle or Throttle(ThrottleLimits())
        self._max_delayed = max_delayed
        self._card = card
        self._anchors = list(trust_anchors)
        self._delayed = 0
        self._ending: set[asyncio.Task[None]] = set()
        sessions.on_end = self._session_ended

    async def start(self) -> None:
        self.policy = await self._users.load_policy()
        self.sessions.policy = self.policy.session
        self.administrator_exists = await self._users.count_role(Role.ADMINISTRATOR) > 0
        for key, failures, until in await self._users.phantoms():
            self._phantoms[key] = (failures, until)

    def _now(self) -> float:
        return self._clock.now().timestamp()

    @asynccontextmanager
    async def _account(self, name: str) -> AsyncIterator[None]:
        """One account's critical section. Audit records made inside it are written after
        it is left (before the caller answers): the records of many attempts then share
        one group commit instead of queueing one fsync each behind the lock."""
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

    async def _record(
        self, type_: EventType, outcome: Outcome, subject: Subject, obj: str, **details: Detail
    ) -> None:
        notes = _NOTES.get()
        if notes is None:
            await self._auditor.record(type_, outcome, subject, obj, **details)
        else:
            notes.append((type_, outcome, subject, obj, details))

    # ---------------------------------------------------------------- logging in

    def source_of(self, seat: Seat, address: str) -> str:
        """The throttling source (A-5, A-6): the remote address a front-end named (its
        prefix when spraying), else the panel, else the local uid."""
        if address:
            return self.throttle.source_of(address)
        if seat.peer_class is PeerClass.PANEL:
            return "panel"
        return f"uid:{seat.peer.uid}"

    async def _admit(self, source: str, subject: Subject) -> None:
        """Count the request; delay it (never blocking others: this task sleeps) or refuse
        it when its source, or everyone together, sends too many."""
        verdict, found = self.throttle.request(source, self._clock.monotonic())
        await self._report(found, subject)
        if verdict.action is Action.REFUSE:
            raise MfpsecError(ErrorCode.THROTTLED, retry_after_s=round(verdict.seconds, 1))
        if verdict.action is Action.DELAY:
            if self._delayed >= self._max_delayed:  # the tarpit is full: bounded memory
                raise MfpsecError(ErrorCode.THROTTLED, retry_after_s=round(verdict.seconds, 1))
            self._delayed += 1
            try:
                await self._clock.sleep(verdict.seconds)
            finally:
                self._delayed -= 1

    async def report_suppressed(self) -> None:
        """Supervised task: the count of suppressed detections, once each window ends,
        and the sessions that timed out meanwhile (their ends are recorded)."""
        while True:
            await self._clock.sleep(self.throttle.limits.request_window_s)
            self.sessions.expire()
            await self._report(self.throttle.flush(self._clock.monotonic()), DAEMON)

    def _session_ended(self, session: Session, why: str) -> None:
        """A service engineer's session ended, however (FAU_GEN.1: maintenance.session):
        recorded from the session table's callback, which cannot wait."""
        if session.role is not Role.SERVICE:
            return
        task = asyncio.get_running_loop().create_task(self._maintenance_end(session, why))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _maintenance_end(self, session: Session, why: str) -> None:
        who = Subject(origin="daemon", user=session.user, role=session.role.value, uid=session.uid)
        try:
            await self._auditor.record(
                EventType.MAINTENANCE_SESSION,
                Outcome.SUCCESS,
                who,
                session.user,
                phase="end",
                session=session.id,
                reason=why,
                duration_s=round(self._clock.monotonic() - session.created, 1),
            )
        except (MfpsecError, RuntimeError) as exc:  # a full log refuses; stopping
            log.error("maintenance_session_unrecorded", session=session.id, error=str(exc))

    async def _report(self, found: list[Detection], subject: Subject) -> None:
        for d in found:
            log.warning(
                "auth_attack_detected",
                kind=d.kind.value,
                source=d.source,
                count=d.count,
                suppressed=d.suppressed,
            )
            await self._auditor.record(
                EventType.AUTH_FLOOD,
                Outcome.SUCCESS,
                subject,
                d.source,
                kind=d.kind.value,
                count=d.count,
                window_s=d.window_s,
                suppressed=d.suppressed,
            )

    async def login(
        self,
        name: str,
        password: SecretBytes,
        otp: str,
        seat: Seat,
        subject: Subject,
        *,
        source: str = "",
    ) -> LoginResult:
        """A password (+ TOTP) login; the session is attached to the seat."""
        source = source or self.source_of(seat, subject.address)
        await self._admit(source, subject)
        try:
            return await self._login(name, password, otp, seat, subject)
        except MfpsecError as exc:
            await self._count_failure(exc, source, subject)
            raise

    async def _count_failure(self, exc: MfpsecError, source: str, subject: Subject) -> None:
        if exc.code in _ATTACK_SIGNS:
            await self._report(self.throttle.failure(source, self._clock.monotonic()), subject)

    async def login_card(
        self, pin: SecretBytes, seat: Seat, subject: Subject, *, source: str = ""
    ) -> LoginResult:
        """A-8: the card's certificate must be acceptable and bound to a user, and the card
        must sign a fresh challenge after the PIN. A wrong PIN, or a signature that does
        not verify, counts towards the user's lockout."""
        card = self._card
        if card is None:
            raise MfpsecError(
                ErrorCode.CARD_UNUSABLE, reason="card login is not configured (auth.card.module)"
            )
        source = source or self.source_of(seat, subject.address)
        await self._admit(source, subject)
        try:
            der = await asyncio.to_thread(card.certificate)
            fp = card_certificate.fingerprint(der)
            try:
                cert = card_certificate.check(der, self._anchors, [], self._clock.now())
                user = await self._users.by_card(fp)
                if user is None:
                    raise MfpsecError(
                        ErrorCode.CERTIFICATE_REJECTED, reason="the certificate is bound to no user"
                    )
            except MfpsecError as exc:
                await self._auditor.record(
                    EventType.AUTH_LOGIN,
                    Outcome.FAILURE,
                    subject,
                    f"card {fp[:16]}",
                    method="card",
                    reason=str(exc.params.get("reason", "")),
                )
                raise
            async with self._account(user.name):
                user = await self._require(user.name)
                await self._refuse_if_locked(user, subject, "card")
                challenge = os.urandom(32)
                try:
                    signature = await asyncio.to_thread(card.sign, pin, challenge)
                except MfpsecError as exc:
                    if exc.code is ErrorCode.AUTHENTICATION_FAILED:
                        await self._failed(user, subject, "card", "wrong PIN")
                    await self._record(
                        EventType.AUTH_LOGIN,
                        Outcome.FAILURE,
                        subject,
                        user.name,
                        method="card",
                        reason=str(exc.params.get("reason", "")),
                    )
                    raise
                if not card_certificate.signed_by(cert, signature, challenge):
                    await self._failed(
                        user,
                        subject,
                        "card",
                        "challenge not signed by the certificate's key",
                        error=MfpsecError(
                            ErrorCode.CARD_UNUSABLE,
                            reason="the card did not prove possession of the certificate's key",
                        ),
                    )
                return await self._open(user, seat, subject, "card", "")
        except MfpsecError as exc:
            await self._count_failure(exc, source, subject)
            raise

    async def bind_card(self, name: str, certificate_pem: str) -> str:
        """Bind a card's certificate to a user (it must be acceptable now) → its
        fingerprint; an empty certificate unbinds."""
        async with self._account(name):
            await self._require(name)
            if not certificate_pem:
                await self._users.set_card(name, None)
                return ""
            try:
                der = x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(
                    serialization.Encoding.DER
                )
            except ValueError:
                raise MfpsecError(
                    ErrorCode.CERTIFICATE_REJECTED, reason="not a PEM certificate"
                ) from None
            card_certificate.check(der, self._anchors, [], self._clock.now())
            fp = card_certificate.fingerprint(der)
            if not await self._users.set_card(name, fp):
                raise MfpsecError(
                    ErrorCode.CERTIFICATE_REJECTED, reason="bound to another user already"
                )
            return fp

    async def _login(
        self, name: str, password: SecretBytes, otp: str, seat: Seat, subject: Subject
    ) -> LoginResult:
        async with self._account(name):
            user = await self._users.get(name) if USER_NAME.match(name) else None
            if user is None:
                await self._phantom_attempt(name, password, subject)
            await self._refuse_if_locked(user, subject, "password")
            if user.totp_enabled and not otp:
                # Ask for the code before the password is checked: a right and a wrong
                # password get the same answer until both are given.
                raise MfpsecError(ErrorCode.SECOND_FACTOR_REQUIRED)
            if not await self._verify(user.name, password):
                await self._failed(user, subject, "password", "wrong password")
            now = self._now()
            policy = self.policy.password
            if user.temporary and now - user.password_set_at > policy.temporary_days * DAY_S:
                await self._record(
                    EventType.AUTH_LOGIN,
                    Outcome.FAILURE,
                    subject,
                    name,
                    method="password",
                    reason="temporary password expired",
                )
                raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED)
            if user.totp_enabled:
                await self._second_factor(user, otp, subject)
            must_change = self._must_change(user, password, policy, now)
            return await self._open(user, seat, subject, "password", must_change)

    def _must_change(
        self, user: UserRow, password: SecretBytes, policy: PasswordPolicy, now: float
    ) -> str:
        if user.temporary:
            return "temporary"
        if policy.expiry_days and now - user.password_set_at > policy.expiry_days * DAY_S:
            return "expired"
        if violations(password.view(), user.name, policy):
            return "policy"  # it breaks the current rules (e.g. made stricter since)
        return ""

    async def _open(
        self, user: UserRow, seat: Seat, subject: Subject, method: str, must_change: str
    ) -> LoginResult:
        await self._users.logged_in(user.name, rfc3339(self._clock))
        token, session = self.sessions.open(user.name, user.role, seat.peer.uid, must_change)
        seat.attach(session)
        who = Subject(
            subject.origin, user.name, user.role.value, subject.uid, subject.pid, subject.address
        )
        details: dict[str, str | int | float | bool] = {"method": method, "session": session.id}
        if must_change:
            details["must_change"] = must_change
        await self._record(EventType.AUTH_LOGIN, Outcome.SUCCESS, who, user.name, **details)
        if user.role is Role.SERVICE:  # FAU_GEN.1: the start of a maintenance session
            await self._record(
                EventType.MAINTENANCE_SESSION,
                Outcome.SUCCESS,
                who,
                user.name,
                phase="start",
                session=session.id,
                method=method,
            )
        return LoginResult(token, session)

    async def _refuse_if_locked(self, user: UserRow, subject: Subject, method: str) -> None:
        remaining = lock_remaining(user.locked_until, self._now())
        if remaining > 0:
            await self._record(
                EventType.AUTH_LOGIN,
                Outcome.FAILURE,
                subject,
                user.name,
                method=method,
                reason="account locked",
            )
            raise MfpsecError(ErrorCode.ACCOUNT_LOCKED, retry_after_s=math.ceil(remaining))

    async def _failed(
        self,
        user: UserRow,
        subject: Subject,
        method: str,
        reason: str,
        *,
        error: MfpsecError | None = None,
    ) -> None:
        """Count a failure (durably), lock at the limit, and refuse (with error, else
        AuthenticationFailed)."""
        failures, until = after_failure(
            user.failures, user.locked_until, self._now(), self.policy.lockout
        )
        await self._users.set_lockout(user.name, failures, until)
        await self._record(
            EventType.AUTH_LOGIN,
            Outcome.FAILURE,
            subject,
            user.name,
            method=method,
            reason=reason,
            failures=failures,
        )
        if until:
            ended = self.sessions.end_user(user.name)
            await self._record(
                EventType.AUTH_LOCKOUT,
                Outcome.SUCCESS,
                subject,
                user.name,
                failures=failures,
                minutes=self.policy.lockout.lock_minutes,
                sessions_ended=ended,
            )
            log.warning("auth_lockout", user=user.name, failures=failures)
        raise error or MfpsecError(ErrorCode.AUTHENTICATION_FAILED)

    async def _phantom_attempt(
        self, name: str, password: SecretBytes, subject: Subject
    ) -> NoReturn:
        """An unknown name: the same work, counting and locking as for a real account."""
        key = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
        failures, until = self._phantoms.get(key, (0, 0.0))
        remaining = lock_remaining(until, self._now())
        await self._record(
            EventType.AUTH_LOGIN,
            Outcome.FAILURE,
            subject,
            name[:64],
            method="password",
            reason="unknown user",
        )
        if remaining > 0:
            raise MfpsecError(ErrorCode.ACCOUNT_LOCKED, retry_after_s=math.ceil(remaining))
        await self._hasher.burn(password)
        failures, until = after_failure(failures, until, self._now(), self.policy.lockout)
        self._phantoms[key] = (failures, until)
        self._phantoms.move_to_end(key)
        while len(self._phantoms) > MAX_PHANTOMS:
            self._phantoms.popitem(last=False)
        # Kept across restarts, as a real account's count is: otherwise a power cycle
        # tells a locked real name (AccountLocked) from an unknown one.
        await self._users.save_phantom(key, failures, until, MAX_PHANTOMS)
        raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED)

    async def _verify(self, name: str, password: SecretBytes) -> bool:
        """Whether the password matches. An account whose verifier is gone (its record
        deleted, or the keys destroyed under a restored database) matches nothing, after
        the same work: to the caller it is a wrong password (no hint that the account
        exists); the audit log, and an administrator setting a new password, deal with it."""
        try:
            record = await self._secrets.get(verifier_name(name))
        except MfpsecError as exc:
            if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                raise
            log.error("auth_verifier_missing", user=name)
            await self._hasher.burn(password)
            return False
        with record:
            return await self._hasher.matches(password, entries(record.view())[0])

    async def _second_factor(self, user: UserRow, otp: str, subject: Subject) -> None:
        if not otp:
            raise MfpsecError(ErrorCode.SECOND_FACTOR_REQUIRED)
        with await self._secrets.get(totp_seed_name(user.name)) as seed:
            step = totp.matching_step(seed.view(), otp, self._now())
        if step is None:
            await self._failed(user, subject, "totp", "wrong one-time code")
        elif not await self._users.use_totp_step(user.name, step):
            await self._failed(user, subject, "totp", "one-time code used before")

    def resume(self, token: str, seat: Seat) -> Session:
        session = self.sessions.find(token, seat.peer.uid)
        if session is None:
            raise MfpsecError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                reason="no such session (ended, timed out or another user's)",
            )
        seat.attach(session)
        return session

    async def logout(self, seat: Seat, subject: Subject) -> None:
        session = seat.detach()
        if session is None:
            return
        self.sessions.end(session)
        await self._auditor.record(
            EventType.AUTH_LOGOUT, Outcome.SUCCESS, subject, session.user, session=session.id
        )

    # ---------------------------------------------------------------- passwords

    async def change_own_password(
        self, seat: Seat, current: SecretBytes, new: SecretBytes, subject: Subject
    ) -> None:
        """A-7: the current password again first (it counts towards the lockout)."""
        async with self._reauthenticated(seat, current, subject) as session:
            await self._store_password(session.user, new, temporary=False)
        session.must_change = ""
        seat.refresh()

    @asynccontextmanager
    async def _reauthenticated(
        self, seat: Seat, password: SecretBytes, subject: Subject
    ) -> AsyncIterator[Session]:
        """The session's user types their password again before something that matters;
        a wrong one counts towards the lockout like a failed login. The body runs inside
        the account's critical section."""
        session = seat.session
        if session is None or not self.sessions.alive(session):
            raise MfpsecError(ErrorCode.AUTHENTICATION_REQUIRED, reason="log in first")
        async with self._account(session.user):
            user = await self._require(session.user)
            await self._refuse_if_locked(user, subject, "reauthentication")
            if not await self._verify(user.name, password):
                await self._failed(user, subject, "reauthentication", "wrong password")
            if user.failures:
                # Any successful authentication of the account ends the run of failures.
                await self._users.set_lockout(user.name, 0, 0.0)
            yield session

    async def reauthenticate(self, seat: Seat, password: SecretBytes, subject: Subject) -> Session:
        """Re-authentication before a destructive operation (a sanitization, a purge)."""
        async with self._reauthenticated(seat, password, subject) as session:
            return session

    async def set_password(self, name: str, new: SecretBytes, temporary: bool) -> None:
        """The administrator sets someone's password: temporary by default, so the user
        must choose their own at the next login; their sessions end."""
        async with self._account(name):
            await self._require(name)
            await self._store_password(name, new, temporary)
        self.sessions.end_user(name)

    async def _store_password(self, name: str, new: SecretBytes, temporary: bool) -> None:
        policy = self.policy.password
        broken = violations(new.view(), name, policy)
        try:
            old = await self._secrets.get(verifier_name(name))
        except MfpsecError as exc:
            if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                raise
            old = SecretBytes(bytearray())  # the verifier is gone: a new one, no history
        with old:
            if not broken and len(old):
                # The current one and the last `history`: never the same again.
                for entry in entries(old.view())[: policy.history + 1]:
                    if await self._hasher.matches(new, entry):
                        broken.append(_reused(policy))
                        break
            if broken:
                _reject(broken)
            salt, verifier = await self._hasher.new_verifier(new)
            previous = old.view() if len(old) else None
            with (
                verifier,
                SecretBytes(
                    new_record(salt, self._hasher.cost, verifier.view(), previous, policy.history)
                ) as record,
            ):
                await self._secrets.put(verifier_name(name), SecretKind.PASSWORD, record)
        await self._users.password_set(name, self._now(), temporary)

    # ---------------------------------------------------------------- accounts

    @property
    def clock(self) -> Clock:
        return self._clock

    async def initialize(self, name: str, password: SecretBytes) -> None:
        """First start (A-3): the device ships without any usable administrator password;
        the first one is set here, once."""
        async with self._setup:
            if await self._users.count_role(Role.ADMINISTRATOR):
                raise MfpsecError(ErrorCode.ALREADY_INITIALIZED)
            await self.add_user(name, Role.ADMINISTRATOR, password, temporary=False)

    async def add_user(self, name: str, role: Role, password: SecretBytes, temporary: bool) -> None:
        if not USER_NAME.match(name):
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="user")
        broken = violations(password.view(), name, self.policy.password)
        if broken:
            _reject(broken)
        async with self._account(name):
            if await self._users.get(name) is not None:
                raise MfpsecError(ErrorCode.USER_EXISTS, user=name)
            salt, verifier = await self._hasher.new_verifier(password)
            with (
                verifier,
                SecretBytes(
                    new_record(salt, self._hasher.cost, verifier.view(), None, 0)
                ) as record,
            ):
                await self._secrets.put(verifier_name(name), SecretKind.PASSWORD, record)
            if not await self._users.insert(
                name, role, rfc3339(self._clock), self._now(), temporary
            ):
                raise MfpsecError(ErrorCode.USER_EXISTS, user=name)
        if role is Role.ADMINISTRATOR:
            self.administrator_exists = True

    async def remove_user(self, name: str) -> None:
        async with self._account(name):
            user = await self._require(name)
            if (
                user.role is Role.ADMINISTRATOR
                and await self._users.count_role(Role.ADMINISTRATOR) <= 1
            ):
                raise MfpsecError(ErrorCode.LAST_ADMINISTRATOR, user=name)
            self.sessions.end_user(name)
            await self._users.delete(name)
            for secret in (verifier_name(name), totp_seed_name(name)):
                try:
                    await self._secrets.delete(secret)  # overwritten, then deleted
                except MfpsecError as exc:
                    if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                        raise

    async def unlock(self, name: str) -> int:
        """Administrator unlock (A-4) → the failures that were counted."""
        async with self._account(name):
            user = await self._require(name)
            await self._users.set_lockout(name, 0, 0.0)
            return user.failures

    async def user(self, name: str) -> UserRow:
        return await self._require(name)

    async def list_users(self) -> list[UserRow]:
        return await self._users.all()

    def locked(self, user: UserRow) -> float:
        return lock_remaining(user.locked_until, self._now())

    async def _require(self, name: str) -> UserRow:
        user = await self._users.get(name)
        if user is None:
            raise MfpsecError(ErrorCode.USER_NOT_FOUND, user=name)
        return user

    async def set_policy(self, policy: AuthPolicy) -> None:
        await self._users.save_policy(policy)
        self.policy = policy
        self.sessions.policy = policy.session

    # ---------------------------------------------------------------- TOTP

    async def enroll_totp(
        self, seat: Seat, password: SecretBytes, subject: Subject
    ) -> TotpEnrollment:
        """A new seed (re-authentication first); active once a code from it is confirmed."""
        if seat.session is not None and seat.session.role not in TOTP_ROLES:
            raise MfpsecError(ErrorCode.PERMISSION_DENIED)
        async with self._reauthenticated(seat, password, subject) as session:
            with SecretBytes.random(totp.SEED_BYTES) as seed:
                await self._secrets.put(totp_seed_name(session.user), SecretKind.TOTP_SEED, seed)
                await self._users.set_totp(session.user, False, -1)
                uri = totp.provisioning_uri(seed.view(), TOTP_ISSUER, session.user)
        secret = uri.split("secret=", 1)[1].split("&", 1)[0]
        return TotpEnrollment(uri, secret)

    async def confirm_totp(self, seat: Seat, code: str) -> None:
        session = seat.session
        if session is None or not self.sessions.alive(session):
            raise MfpsecError(ErrorCode.AUTHENTICATION_REQUIRED, reason="log in first")
        async with self._account(session.user):
            try:
                seed = await self._secrets.get(totp_seed_name(session.user))
            except MfpsecError as exc:
                if exc.code is ErrorCode.SECRET_NOT_FOUND:
                    raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="code") from None
                raise
            with seed:
                step = totp.matching_step(seed.view(), code, self._now())
            if step is None:
                raise MfpsecError(ErrorCode.AUTHENTICATION_FAILED)
            await self._users.set_totp(session.user, True, step)

    async def reset_totp(self, name: str) -> None:
        """The administrator removes a user's second factor (a lost phone)."""
        async with self._account(name):
            await self._require(name)
            await self._users.set_totp(name, False, -1)
            try:
                await self._secrets.delete(totp_seed_name(name))
            except MfpsecError as exc:
                if exc.code is not ErrorCode.SECRET_NOT_FOUND:
                    raise


def _reused(policy: PasswordPolicy) -> Violation:
    return Violation(Rule.REUSED, f"not the current password nor one of the last {policy.history}")


def _reject(broken: list[Violation]) -> None:
    raise MfpsecError(
        ErrorCode.PASSWORD_REJECTED,
        rules=",".join(v.rule.value for v in broken),
        requirements="; ".join(v.requirement for v in broken),
    )
