"""Who a caller is: the audit record's subject, the re-authentication before a destructive
operation, the network address a front-end vouches for. Every capability's handlers ask
these; they are the one way into auth from outside it."""

from __future__ import annotations

import ipaddress

from mfpsecd.audit.log_format import Subject
from mfpsecd.auth.model.password_policy import printable_ascii
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import seat_of
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.varlink.calls import CallContext

_ORIGINS = {
    PeerClass.SYSTEM: "system",
    PeerClass.PANEL: "panel",
    PeerClass.MAINTENANCE: "cli",
    PeerClass.REMOTE_AGENT: "remote-agent",
    PeerClass.FLEET_AGENT: "fleet-agent",
    PeerClass.UNKNOWN: "unknown",
}
# Peers that front network users and may say which remote address a login comes from.
_FRONT_ENDS = frozenset({PeerClass.SYSTEM, PeerClass.PANEL})


def subject_of(ctx: CallContext, address: str = "") -> Subject:
    """Who called, for the audit record: the logged-in user and role when there is one."""
    s = seat_of(ctx.seat).session
    origin = "network" if address else _ORIGINS[ctx.peer_class]
    if s is None or s.ended:
        return Subject(origin=origin, uid=ctx.peer.uid, pid=ctx.peer.pid, address=address)
    return Subject(
        origin=origin,
        user=s.user,
        role=s.role.value,
        uid=ctx.peer.uid,
        pid=ctx.peer.pid,
        address=address,
    )


async def reauthenticate(
    ctx: CallContext, auth: AuthService, password: SecretBytes, subject: Subject
) -> None:
    """Before a destructive operation (a sanitization, a purge): whoever is logged in
    proves it again; only root without a session (the recovery path, where nobody can
    log in) is not asked."""
    if seat_of(ctx.seat).session is None and ctx.peer_class is PeerClass.SYSTEM:
        return
    if not len(password):
        raise MfpsecError(
            ErrorCode.AUTHENTICATION_REQUIRED, reason="re-authentication: give your password again"
        )
    if not printable_ascii(password.view()):
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="password")
    await auth.reauthenticate(seat_of(ctx.seat), password, subject)


def password_given(raw: bytearray, parameter: str = "password") -> SecretBytes:
    """A password to verify, as the client sent it (the bytes its base64 carried). Every
    password is printable ASCII (A-2); anything else cannot match, so it is not a wrong
    password (which would count towards the lockout) but a parameter the client encoded
    wrongly, e.g. the plain text where the IDL asks for its base64."""
    secret = SecretBytes(raw)
    if printable_ascii(secret.view()):
        return secret
    secret.close()
    raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter=parameter)


def remote_address(ctx: CallContext, text: str) -> str:
    """The network client's address a front-end passed, normalised; "" for local."""
    if not text:
        return ""
    if ctx.peer_class not in _FRONT_ENDS:
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="remote_address")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="remote_address") from None
