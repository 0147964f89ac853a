"""The auth service on a real state store and key chain (software keys), without the
daemon: what the auth service tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Subject
from mfpsecd.audit.service import Auditor, AuditQuery
from mfpsecd.auth.api import SessionPolicy
from mfpsecd.auth.model.throttle import Throttle, ThrottleLimits
from mfpsecd.auth.password_hasher import PasswordHasher
from mfpsecd.auth.ports import CardReader
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import Seat, SessionTable
from mfpsecd.auth.user_store import UserStore
from mfpsecd.base.admission import PeerClass, PeerCredentials
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.secret import SecretBytes
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.model.passphrase import Cost
from mfpsecd.keys.secrets import SecretStore
from tests.support.fakeclock import FakeClock

FAST = Cost(memory_kib=8 * 1024, iterations=1, lanes=1)  # the minimum the config allows


ADMIN_PW = "Adm1n-password-2026"


USER_PW = "User-password-2026"


CLI = Subject(origin="cli", uid=1000, pid=42)


# These tests are about accounts: flood throttling (tested on its own) stays out of the way.
UNTHROTTLED = ThrottleLimits(failures=10_000, requests=10_000, total_requests=100_000)


def pw(text: str) -> SecretBytes:
    return SecretBytes(bytearray(text.encode()))


def seat(uid: int = 1000) -> Seat:
    return Seat(PeerCredentials(42, uid, uid), PeerClass.MAINTENANCE)


@dataclass
class Stack:
    clock: FakeClock
    state: SqliteState
    auth: AuthService
    auditor: Auditor
    secrets: SecretStore

    async def events(self, type_: EventType) -> list[dict[str, object]]:
        records = await self.auditor.query(AuditQuery(types=frozenset({type_})))
        return [{"outcome": r.outcome, "object": r.object, **r.details} for r in records]


@contextlib.asynccontextmanager
async def stack(
    tmp: Path,
    clock: FakeClock | None = None,
    limits: ThrottleLimits = UNTHROTTLED,
    card: CardReader | None = None,
    anchors: tuple[x509.Certificate, ...] = (),
) -> AsyncIterator[Stack]:
    """The services as the daemon wires them; opening it again on the same tmp is a
    daemon restart."""
    clock = clock or FakeClock()
    health = HealthRegistry(clock)
    state = SqliteState(tmp / "state.sqlite3")
    await state.open()
    auditor = Auditor(AuditFile(tmp / "audit"), clock, health, state)
    await auditor.start()
    chain = KeyChain(state, SoftwareKeys(tmp), NativeKeyCrypto(), clock, health)
    await chain.start()
    secrets = SecretStore(state, chain, clock)
    hasher = PasswordHasher(NativeKeyCrypto(), FAST)
    auth = AuthService(
        UserStore(state),
        secrets,
        hasher,
        sessions=SessionTable(clock, SessionPolicy()),
        auditor=auditor,
        clock=clock,
        throttle=Throttle(limits),
        card=card,
        trust_anchors=anchors,
    )
    await auth.start()
    try:
        yield Stack(clock, state, auth, auditor, secrets)
    finally:
        hasher.close()
        await auditor.stop()
        await chain.close()
        await state.close()


async def code_of(err: object) -> ErrorCode:
    assert isinstance(err, MfpsecError), err
    return err.code


async def login(
    s: Stack, user: str, password: str, otp: str = "", uid: int = 1000
) -> tuple[Seat, str]:
    st = seat(uid)
    r = await s.auth.login(user, pw(password), otp, st, CLI)
    return st, r.token


async def refused(s: Stack, user: str, password: str, otp: str = "") -> ErrorCode:
    with pytest.raises(MfpsecError) as exc:
        await login(s, user, password, otp)
    return exc.value.code
