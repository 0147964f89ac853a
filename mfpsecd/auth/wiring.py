"""The auth service built from the configuration, with what it needs from the key chain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mfpsecd.audit.service import Auditor
from mfpsecd.auth.api import SessionPolicy
from mfpsecd.auth.model.throttle import Throttle
from mfpsecd.auth.password_hasher import PasswordHasher
from mfpsecd.auth.ports import CardReader
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import SessionTable
from mfpsecd.auth.user_store import UserStore
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import Config
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.state import StateStore
from mfpsecd.keys.model.passphrase import Cost
from mfpsecd.keys.ports import KeyCrypto
from mfpsecd.keys.secrets import SecretStore


@dataclass(frozen=True)
class Auth:
    """What the daemon keeps of auth: the service, the session table the IPC server
    checks, the flood detection the IP filter's bans follow, the hashing pool to close."""

    service: AuthService
    sessions: SessionTable
    throttle: Throttle
    hasher: PasswordHasher


def make_auth(
    cfg: Config,
    state: StateStore,
    secrets: SecretStore,
    crypto: KeyCrypto,
    auditor: Auditor,
    *,
    clock: Clock,
    throttle: Throttle,
) -> Auth:
    a = cfg.auth
    hasher = PasswordHasher(
        crypto,
        Cost(a.argon2_memory_kib, a.argon2_iterations, a.argon2_lanes),
        a.hash_workers,
        a.hash_queue,
    )
    sessions = SessionTable(clock, SessionPolicy())
    card = a.card
    service = AuthService(
        UserStore(state),
        secrets,
        hasher,
        sessions=sessions,
        auditor=auditor,
        clock=clock,
        throttle=throttle,
        max_delayed=a.flood.max_delayed,
        card=_card(card.module, card.token_label),
        trust_anchors=_trust_anchors(card.trust_anchors),
    )
    return Auth(service, sessions, throttle, hasher)


def _trust_anchors(paths: list[str]) -> tuple[x509.Certificate, ...]:
    """The CA certificates card certificates must chain to (refused at start if unusable)."""
    out: list[x509.Certificate] = []
    for i, path in enumerate(paths):
        try:
            out += x509.load_pem_x509_certificates(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID,
                key=f"auth.card.trust_anchors[{i}]",
                reason=f"{path}: {exc}",
            ) from None
    return tuple(out)


def _card(module: str, token_label: str) -> CardReader | None:
    """The PKCS#11 card reader when card login is configured. python-pkcs11 is imported
    only then: most devices never load it."""
    if not module:
        return None
    from mfpsecd.auth.backends.pkcs11_card import Pkcs11Card  # noqa: PLC0415

    return Pkcs11Card(module, token_label)
