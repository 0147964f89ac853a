"""io.mfpsecd.Auth handlers."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from mfpsecd.audit.events import EventType
from mfpsecd.audit.model import setting_changes
from mfpsecd.audit.service import Auditor
from mfpsecd.auth import api
from mfpsecd.auth.admin_recovery import AdminRecovery
from mfpsecd.auth.caller import password_given, remote_address, subject_of
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import Session, seat_of
from mfpsecd.auth.user_store import UserRow
from mfpsecd.base.clock import utc_text
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.varlink.calls import CallContext
from mfpsecd.varlink.routes import handles
from mfpsecd.varlink.schema import NoParams


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


class AuthHandlers:
    """io.mfpsecd.Auth. `administrator_unset(bool)` tells the status whether the first
    administrator is still to be set (A-3)."""

    def __init__(
        self,
        auth: AuthService,
        auditor: Auditor,
        administrator_unset: Callable[[bool], None],
    ) -> None:
        self._auth = auth
        self._auditor = auditor
        self._recovery = AdminRecovery(auth, auth.clock)
        self._administrator_unset = administrator_unset
        administrator_unset(not auth.accounts.administrator_exists)

    def _idle(self) -> int:
        return self._auth.policy.session.idle_minutes

    def _administrator_set(self) -> None:
        self._administrator_unset(False)

    @handles(api.INITIALIZE_ADMINISTRATOR)
    async def initialize(self, ctx: CallContext, p: api.InitializeParams) -> api.Empty:
        async with self._auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            with SecretBytes(p.password) as password:
                await self._auth.accounts.initialize(p.user, password)
            ev.details.update(action="initialize", role="administrator")
            ev.succeed()
        self._administrator_set()
        return api.Empty()

    @handles(api.LOGIN)
    async def login(self, ctx: CallContext, p: api.LoginParams) -> api.SessionInfo:
        address = remote_address(ctx, p.remote_address)
        with password_given(p.password) as password:
            r = await self._auth.login(
                p.user, password, p.otp, seat_of(ctx.seat), subject_of(ctx, address)
            )
        return _session_info(r.session, r.token, self._idle())

    @handles(api.LOGIN_CARD)
    async def login_card(self, ctx: CallContext, p: api.CardLoginParams) -> api.SessionInfo:
        address = remote_address(ctx, p.remote_address)
        with SecretBytes(p.pin) as pin:
            r = await self._auth.login_card(pin, seat_of(ctx.seat), subject_of(ctx, address))
        return _session_info(r.session, r.token, self._idle())

    @handles(api.BIND_CARD)
    async def bind_card(self, ctx: CallContext, p: api.BindCardParams) -> api.BindCardResult:
        async with self._auditor.event(EventType.MANAGEMENT, subject_of(ctx), p.user) as ev:
            ev.details["action"] = "bind card" if p.certificate else "unbind card"
            fp = await self._auth.bind_card(p.user, p.certificate)
            ev.details["fingerprint"] = fp
            ev.succeed()
        return api.BindCardResult(fp)

    @handles(api.RESUME)
    def resume(self, ctx: CallContext, p: api.ResumeParams) -> api.SessionInfo:
        return _session_info(self._auth.resume(p.token, seat_of(ctx.seat)), "", self._idle())

    @handles(api.LOGOUT)
    async def logout(self, ctx: CallContext, _: NoParams) -> api.Empty:
        await self._auth.logout(seat_of(ctx.seat), subject_of(ctx))
        return api.Empty()

    @handles(api.WHO_AM_I)
    def whoami(self, ctx: CallContext, _: NoParams) -> api.WhoAmI:
        seat = seat_of(ctx.seat)
        s = seat.session
        if s is not None and not self._auth.sessions.alive(s):
            seat.detach()
            s = None
        grants = sorted(p.value for p in seat.grants)
        if s is None:
            return api.WhoAmI(ctx.peer.uid, ctx.peer_class.value, "", "", "", "", grants)
        return api.WhoAmI(
            ctx.peer.uid, ctx.peer_class.value, s.user, s.role.value, s.id, s.must_change, grants
        )

    @handles(api.CHANGE_PASSWORD)
    async def change_password(self, ctx: CallContext, p: api.ChangePasswordParams) -> api.Empty:
        subject = subject_of(ctx)
        async with self._auditor.event(EventType.MANAGEMENT, subject, subject.user) as ev:
            ev.details["action"] = "change own password"
            with password_given(p.current, "current") as current, SecretBytes(p.new) as new:
                await self._auth.change_own_password(seat_of(ctx.seat), current, new, subject)
            ev.succeed()
        return api.Empty()

    @handles(api.GET_POLICY)
    def get_policy(self, ctx: CallContext, _: NoParams) -> api.AuthPolicy:
        return self._auth.policy

    @handles(api.SET_POLICY)
    async def set_policy(self, ctx: CallContext, p: api.AuthPolicy) -> api.AuthPolicy:
        async with self._auditor.event(EventType.MANAGEMENT, subject_of(ctx), "auth policy") as ev:
            ev.details["action"] = "set policy"
            before = self._auth.policy
            await self._auth.set_policy(p)
            ev.details.update(
                setting_changes.as_details(
                    setting_changes.changes(before, self._auth.policy, prefix="auth")
                )
            )
            ev.succeed()
        return self._auth.policy

    @handles(api.LIST_USERS)
    async def list_users(self, ctx: CallContext, _: NoParams) -> api.UserList:
        return api.UserList(
            [
                user_info(u, self._auth.accounts.locked(u))
                for u in await self._auth.accounts.list_users()
            ]
        )

    @handles(api.ADD_USER)
    async def add_user(self, ctx: CallContext, p: api.AddUserParams) -> api.UserInfo:
        async with self._auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            ev.details.update(action="add user", role=p.role.value, temporary=p.temporary)
            with SecretBytes(p.password) as password:
                await self._auth.accounts.add_user(p.user, p.role, password, p.temporary)
            ev.succeed()
        return user_info(await self._auth.accounts.user(p.user), 0.0)

    @handles(api.SET_USER_PASSWORD)
    async def set_user_password(self, ctx: CallContext, p: api.SetPasswordParams) -> api.Empty:
        subject = subject_of(ctx)
        if subject.user == p.user:
            # Re-authentication: one's own password goes through ChangePassword.
            raise MfpsecError(ErrorCode.INVALID_PARAMETER, parameter="user")
        async with self._auditor.event(EventType.MANAGEMENT, subject, p.user) as ev:
            ev.details.update(
                action="set password",
                temporary=p.temporary,
                changed="password",
                **{"old.password": "changed", "new.password": "changed"},
            )
            with SecretBytes(p.password) as password:
                await self._auth.accounts.set_password(p.user, password, p.temporary)
            ev.succeed()
        return api.Empty()

    @handles(api.UNLOCK_USER)
    async def unlock(self, ctx: CallContext, p: api.UserParams) -> api.UnlockResult:
        async with self._auditor.event(EventType.AUTH_UNLOCK, subject_of(ctx), p.user) as ev:
            failures = await self._auth.accounts.unlock(p.user)
            ev.details["failures"] = failures
            ev.succeed()
        return api.UnlockResult(failures)

    @handles(api.REMOVE_USER)
    async def remove_user(self, ctx: CallContext, p: api.UserParams) -> api.Empty:
        async with self._auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            ev.details["action"] = "remove user"
            await self._auth.accounts.remove_user(p.user)
            ev.succeed()
        return api.Empty()

    @handles(api.ENROLL_TOTP)
    async def enroll_totp(self, ctx: CallContext, p: api.PasswordParams) -> api.TotpEnrollment:
        subject = subject_of(ctx)
        async with self._auditor.event(EventType.MANAGEMENT, subject, subject.user) as ev:
            ev.details["action"] = "enroll totp"
            with password_given(p.password) as password:
                e = await self._auth.enroll_totp(seat_of(ctx.seat), password, subject)
            ev.succeed()
        return api.TotpEnrollment(e.uri, e.secret_base32)

    @handles(api.CONFIRM_TOTP)
    async def confirm_totp(self, ctx: CallContext, p: api.CodeParams) -> api.Empty:
        subject = subject_of(ctx)
        async with self._auditor.event(EventType.MANAGEMENT, subject, subject.user) as ev:
            ev.details["action"] = "confirm totp"
            await self._auth.totp.confirm(seat_of(ctx.seat), p.code)
            ev.succeed()
        return api.Empty()

    @handles(api.RESET_TOTP)
    async def reset_totp(self, ctx: CallContext, p: api.UserParams) -> api.Empty:
        async with self._auditor.event(EventType.MANAGEMENT, subject_of(ctx), p.user) as ev:
            ev.details["action"] = "reset totp"
            await self._auth.totp.reset(p.user)
            ev.succeed()
        return api.Empty()

    @handles(api.REQUEST_RECOVERY)
    async def request_recovery(self, ctx: CallContext, p: api.UserParams) -> api.RecoveryRequest:
        async with self._auditor.event(EventType.ROLE_CHANGE, subject_of(ctx), p.user) as ev:
            ev.details.update(action="recovery requested", role="administrator", phase="recovery")
            ticket = await self._recovery.request(p.user, ctx.peer.uid)
            ev.details["request"] = ticket.id
            ev.succeed()
        return api.RecoveryRequest(
            ticket.id, ticket.user, math.ceil(self._recovery.remaining(ticket))
        )

    @handles(api.PENDING_RECOVERIES)
    def pending_recoveries(self, ctx: CallContext, _: NoParams) -> api.PendingRecoveries:
        t = self._recovery.pending()
        return api.PendingRecoveries(
            []
            if t is None
            else [
                api.PendingRecovery(
                    t.id, t.user, t.uid, t.code, math.ceil(self._recovery.remaining(t))
                )
            ]
        )

    @handles(api.COMPLETE_RECOVERY)
    async def complete_recovery(
        self, ctx: CallContext, p: api.CompleteRecoveryParams
    ) -> api.UserInfo:
        waiting = self._recovery.pending()
        async with self._auditor.event(
            EventType.ROLE_CHANGE, subject_of(ctx), waiting.user if waiting else ""
        ) as ev:
            ev.details.update(
                action="administrator recovered",
                role="administrator",
                phase="recovery",
                request=p.request,
            )
            with SecretBytes(p.password) as password:
                user = await self._recovery.complete(p.request, p.code, ctx.peer.uid, password)
            ev.succeed()
        self._administrator_set()
        return user_info(user, 0.0)
