"""io.mfpsecd.Auth handlers, and who a caller is for the audit log."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math

from mfpsecd.api import auth as api
from mfpsecd.api.auditlog import EventType, Subject
from mfpsecd.base.admission import PeerClass
from mfpsecd.base.clock import utc_text
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.core import setting_changes
from mfpsecd.services.admin_recovery import AdminRecovery
from mfpsecd.services.audit import Auditor
from mfpsecd.services.auth import AuthService
from mfpsecd.services.sessions import Session, seat_of
from mfpsecd.services.status import StatusService
from mfpsecd.services.user_store import UserRow
from mfpsecd.varlink.schema import NoParams
from mfpsecd.varlink.server import CallContext, Handler

ADMIN_UNSET = "administrator-unset"

_ORIGINS = {
    PeerClass.SYSTEM: "system",
    PeerClass.PANEL: "panel",
    PeerClass.MAINTENANCE: "cli",
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
    await auth.reauthenticate(seat_of(ctx.seat), password, subject)


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


def _session_info(s: Session, token: str, idle: int) -> api.SessionInfo:
    return api.SessionInfo(token, s.id, s.user, s.role, s.must_change, idle)


def _epoch_text(epoch: float) -> str:
    return utc_text(dt.datetime.fromtimestamp(epoch, dt.UTC), "seconds")


def user_info(u: UserRow, locked_for: float) -> api.UserInfo:
    return api.UserInfo(
        u.name,
        u.role,
        u.created_at,
        _epoch_text(u.password_set_at),
        u.temporary,
        u.failures,
        math.ceil(locked_for),
        u.last_login_at,
        u.totp_enabled,
        u.card_fingerprint,
    )


def auth_handlers(auth: AuthService, auditor: Auditor, status: StatusService) -> dict[str, Handler]:  # noqa: C901 - to split (issue 24)
    status.set_notice(ADMIN_UNSET, not auth.administrator_exists)

    def idle() -> int:
        return auth.policy.session.idle_minutes

    async def initialize(ctx: CallContext, p: api.InitializeParams) -> api.Empty:
        async with auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            with SecretBytes(p.password) as password:
                await auth.initialize(p.user, password)
            ev.details.update(action="initialize", role="administrator")
            ev.succeed()
        status.set_notice(ADMIN_UNSET, False)
        return api.Empty()

    async def login(ctx: CallContext, p: api.LoginParams) -> api.SessionInfo:
        address = remote_address(ctx, p.remote_address)
        with SecretBytes(p.password) as password:
            r = await auth.login(
                p.user, password, p.otp, seat_of(ctx.seat), subject_of(ctx, address)
            )
        return _session_info(r.session, r.token, idle())

    async def login_card(ctx: CallContext, p: api.CardLoginParams) -> api.SessionInfo:
        address = remote_address(ctx, p.remote_address)
        with SecretBytes(p.pin) as pin:
            r = await auth.login_card(pin, seat_of(ctx.seat), subject_of(ctx, address))
        return _session_info(r.session, r.token, idle())

    async def bind_card(ctx: CallContext, p: api.BindCardParams) -> api.BindCardResult:
        async with auditor.event(EventType.MANAGEMENT, subject_of(ctx), p.user) as ev:
            ev.details["action"] = "bind card" if p.certificate else "unbind card"
            fp = await auth.bind_card(p.user, p.certificate)
            ev.details["fingerprint"] = fp
            ev.succeed()
        return api.BindCardResult(fp)

    def resume(ctx: CallContext, p: api.ResumeParams) -> api.SessionInfo:
        return _session_info(auth.resume(p.token, seat_of(ctx.seat)), "", idle())

    async def logout(ctx: CallContext, _: NoParams) -> api.Empty:
        await auth.logout(seat_of(ctx.seat), subject_of(ctx))
        return api.Empty()

    def whoami(ctx: CallContext, _: NoParams) -> api.WhoAmI:
        seat = seat_of(ctx.seat)
        s = seat.session
        if s is not None and not auth.sessions.alive(s):
            seat.detach()
            s = None
        grants = sorted(p.value for p in seat.grants)
        if s is None:
            return api.WhoAmI(ctx.peer.uid, ctx.peer_class.value, "", "", "", "", grants)
        return api.WhoAmI(
            ctx.peer.uid, ctx.peer_class.value, s.user, s.role.value, s.id, s.must_change, grants
        )

    async def change_password(ctx: CallContext, p: api.ChangePasswordParams) -> api.Empty:
        subject = subject_of(ctx)
        async with auditor.event(EventType.MANAGEMENT, subject, subject.user) as ev:
            ev.details["action"] = "change own password"
            with SecretBytes(p.current) as current, SecretBytes(p.new) as new:
                await auth.change_own_password(seat_of(ctx.seat), current, new, subject)
            ev.succeed()
        return api.Empty()

    def get_policy(ctx: CallContext, _: NoParams) -> api.AuthPolicy:
        return auth.policy

    async def set_policy(ctx: CallContext, p: api.AuthPolicy) -> api.AuthPolicy:
        async with auditor.event(EventType.MANAGEMENT, subject_of(ctx), "auth policy") as ev:
            ev.details["action"] = "set policy"
            before = auth.policy
            await auth.set_policy(p)
            ev.details.update(
                setting_changes.as_details(
                    setting_changes.changes(before, auth.policy, prefix="auth")
                )
            )
            ev.succeed()
        return auth.policy

    async def list_users(ctx: CallContext, _: NoParams) -> api.UserList:
        return api.UserList([user_info(u, auth.locked(u)) for u in await auth.list_users()])

    async def add_user(ctx: CallContext, p: api.AddUserParams) -> api.UserInfo:
        async with auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            ev.details.update(action="add user", role=p.role.value, temporary=p.temporary)
            with SecretBytes(p.password) as password:
                await auth.add_user(p.user, p.role, password, p.temporary)
            ev.succeed()
        return user_info(await auth.user(p.user), 0.0)

    async def set_user_password(ctx: CallContext, p: api.SetPasswordParams) -> api.Empty:
        subject = subject_of(ctx)
        if subject.user == p.user:
            # Re-authentication: one's own password goes through ChangePassword.
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="user")
        async with auditor.event(EventType.MANAGEMENT, subject, p.user) as ev:
            ev.details.update(
                action="set password",
                temporary=p.temporary,
                changed="password",
                **{"old.password": "changed", "new.password": "changed"},
            )
            with SecretBytes(p.password) as password:
                await auth.set_password(p.user, password, p.temporary)
            ev.succeed()
        return api.Empty()

    async def unlock(ctx: CallContext, p: api.UserParams) -> api.UnlockResult:
        async with auditor.event(EventType.AUTH_UNLOCK, subject_of(ctx), p.user) as ev:
            failures = await auth.unlock(p.user)
            ev.details["failures"] = failures
            ev.succeed()
        return api.UnlockResult(failures)

    async def remove_user(ctx: CallContext, p: api.UserParams) -> api.Empty:
        async with auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            ev.details["action"] = "remove user"
            await auth.remove_user(p.user)
            ev.succeed()
        return api.Empty()

    async def enroll_totp(ctx: CallContext, p: api.PasswordParams) -> api.TotpEnrollment:
        subject = subject_of(ctx)
        async with auditor.event(EventType.MANAGEMENT, subject, subject.user) as ev:
            ev.details["action"] = "enroll totp"
            with SecretBytes(p.password) as password:
                e = await auth.enroll_totp(seat_of(ctx.seat), password, subject)
            ev.succeed()
        return api.TotpEnrollment(e.uri, e.secret_base32)

    async def confirm_totp(ctx: CallContext, p: api.CodeParams) -> api.Empty:
        subject = subject_of(ctx)
        async with auditor.event(EventType.MANAGEMENT, subject, subject.user) as ev:
            ev.details["action"] = "confirm totp"
            await auth.confirm_totp(seat_of(ctx.seat), p.code)
            ev.succeed()
        return api.Empty()

    async def reset_totp(ctx: CallContext, p: api.UserParams) -> api.Empty:
        async with auditor.event(EventType.MANAGEMENT, subject_of(ctx), p.user) as ev:
            ev.details["action"] = "reset totp"
            await auth.reset_totp(p.user)
            ev.succeed()
        return api.Empty()

    recovery = AdminRecovery(auth, auth.clock)

    async def request_recovery(ctx: CallContext, p: api.UserParams) -> api.RecoveryRequest:
        async with auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            ev.details.update(action="recovery requested", role="administrator", phase="recovery")
            ticket = await recovery.request(p.user, ctx.peer.uid)
            ev.details["request"] = ticket.id
            ev.succeed()
        return api.RecoveryRequest(ticket.id, ticket.user, math.ceil(recovery.remaining(ticket)))

    def pending_recoveries(ctx: CallContext, _: NoParams) -> api.PendingRecoveries:
        t = recovery.pending()
        return api.PendingRecoveries(
            []
            if t is None
            else [
                api.PendingRecovery(t.id, t.user, t.uid, t.code, math.ceil(recovery.remaining(t)))
            ]
        )

    async def complete_recovery(ctx: CallContext, p: api.CompleteRecoveryParams) -> api.UserInfo:
        waiting = recovery.pending()
        async with auditor.event(
            EventType.ROLE_CHANGE, subject_of(ctx), waiting.user if waiting else ""
        ) as ev:
            ev.details.update(
                action="administrator recovered",
                role="administrator",
                phase="recovery",
                request=p.request,
            )
            with SecretBytes(p.password) as password:
                user = await recovery.complete(p.request, p.code, ctx.peer.uid, password)
            ev.succeed()
        status.set_notice(ADMIN_UNSET, False)
        return user_info(user, 0.0)

    a = "io.mfpsecd.Auth."
    return {
        a + "InitializeAdministrator": initialize,
        a + "Login": login,
        a + "LoginCard": login_card,
        a + "BindCard": bind_card,
        a + "Resume": resume,
        a + "Logout": logout,
        a + "WhoAmI": whoami,
        a + "ChangePassword": change_password,
        a + "GetPolicy": get_policy,
        a + "SetPolicy": set_policy,
        a + "ListUsers": list_users,
        a + "AddUser": add_user,
        a + "SetUserPassword": set_user_password,
        a + "UnlockUser": unlock,
        a + "RemoveUser": remove_user,
        a + "EnrollTotp": enroll_totp,
        a + "ConfirmTotp": confirm_totp,
        a + "ResetTotp": reset_totp,
        a + "RequestRecovery": request_recovery,
        a + "PendingRecoveries": pending_recoveries,
        a + "CompleteRecovery": complete_recovery,
    }
