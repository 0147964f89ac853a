"""io.mfpsecd.Auth: logging in and out, sessions, passwords, the second factor, user
accounts and the administrator's authentication policy (SPEC A-1..A-10).

Passwords, PINs and codes travel as base64 bytearrays (sensitive methods): the daemon
wipes its copies once used. A session is attached to the connection that logged in;
another connection of the same uid attaches it with Resume and the token (the CLI keeps
the token in a 0600 file in the user's runtime directory).
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from mfpsecd.base.access import Privilege, Role
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.schema import SECRET, Interface, Method, NoParams

UserName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9._-]{0,31}\Z")]
# What a user may type as a name at login: refused without saying more if no such user.
# No control or bidirectional-formatting characters: the name is shown to auditors, and an
# ESC/CR sequence or a right-to-left override could rewrite what they see.
_SHOWN_SAFELY = r"[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
LoginName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=f"^{_SHOWN_SAFELY}*" r"\Z")
]
Password = Annotated[bytearray, msgspec.Meta(min_length=1, max_length=256)]
# The password again before a destructive operation: empty only for root without a
# session (the recovery path), refused for anyone logged in.
ReauthPassword = Annotated[bytearray, msgspec.Meta(max_length=256)]
Address = Annotated[str, msgspec.Meta(max_length=64, pattern=f"^{_SHOWN_SAFELY}*" r"\Z")]
Token = Annotated[str, msgspec.Meta(min_length=16, max_length=128), SECRET]
OneTimeCode = Annotated[str, msgspec.Meta(max_length=16)]


# ---------------------------------------------------------------- the policy document


class CharClass(enum.Enum):
    """A class of printable ASCII characters, for the password policy's complexity rule."""

    DIGIT = "digit"  # 0-9
    UPPER = "upper"  # A-Z
    LOWER = "lower"  # a-z
    SYMBOL = "symbol"  # any other printable ASCII character, space included


def _doc(text: str, *, ge: int | None = None, le: int | None = None) -> msgspec.Meta:
    """A policy value's bounds and its meaning (README's policy table is made from both)."""
    return msgspec.Meta(description=text, ge=ge, le=le)


class PasswordPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A-2, administrator-configurable; the defaults are the SPEC's."""

    # Shortest password accepted, 8-64 (default 12). Every password is printable ASCII, at
    # most 128 characters and not one character repeated, whatever the policy.
    min_length: Annotated[
        int,
        _doc(
            "shortest password accepted (printable ASCII, not one repeated character)", ge=8, le=64
        ),
    ] = 12
    # The classes every new password must hold a character of; empty (the default): no
    # complexity rule.
    required_classes: Annotated[
        frozenset[CharClass],
        _doc(
            "character classes every password must contain (digit, upper, lower, symbol); "
            "none: no complexity rule"
        ),
    ] = frozenset()
    # A password may not contain the user name, in any letter case (default true).
    forbid_user_id: Annotated[bool, _doc("a password may not contain the user name")] = True
    # A new password may be neither the current one nor one of the N before it, 0-24
    # (default 5; 0: only the current one is refused).
    history: Annotated[
        int, _doc("no reuse of the current nor of the last N passwords", ge=0, le=24)
    ] = 5
    # Days after which a password expires: a login then may only change it, 0-3650; 0 (the
    # default): never.
    expiry_days: Annotated[
        int,
        _doc(
            "a password expires after this many days (then a login may only change it); 0: never",
            ge=0,
            le=3650,
        ),
    ] = 0
    # Days a temporary password (set by an administrator or a recovery) lets its user log in
    # to change it, 1-30 (default 7); after that the login is refused.
    temporary_days: Annotated[
        int,
        _doc(
            "a temporary password (set by an administrator) works this long, for a forced change",
            ge=1,
            le=30,
        ),
    ] = 7


class LockoutPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A-4: max_failures consecutive failures lock the account for lock_minutes."""

    # Consecutive failed attempts (password, PIN, one-time code, re-authentication) that
    # lock the account, 1-10 (default 3).
    max_failures: Annotated[
        int, _doc("consecutive failed logins that lock the account", ge=1, le=10)
    ] = 3
    # Minutes a lock lasts, 1-1440 (default 30); an administrator may lift it sooner
    # (UnlockUser).
    lock_minutes: Annotated[
        int,
        _doc(
            "how long a locked account stays locked (an administrator may unlock it sooner)",
            ge=1,
            le=1440,
        ),
    ] = 30


class SessionPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A-7: a session ends after idle_minutes without a call, and after max_hours anyway."""

    # Minutes without a call after which a session ends, 1-1440 (default 10).
    idle_minutes: Annotated[
        int, _doc("a session ends after this long without a call", ge=1, le=1440)
    ] = 10
    # Hours after its login after which a session ends anyway, 1-168 (default 12).
    max_hours: Annotated[int, _doc("a session ends after this long anyway", ge=1, le=168)] = 12


class AuthPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # what a new password must be. SetPolicy replaces the whole policy: a section or
    # value left out gets its default, not the value in force.
    password: PasswordPolicy = PasswordPolicy()
    lockout: LockoutPolicy = LockoutPolicy()  # when failed attempts lock an account
    session: SessionPolicy = SessionPolicy()  # when a session ends


# ---------------------------------------------------------------- calls and replies


class LoginParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user: LoginName  # the account name as typed; an unknown one is refused as a wrong password
    # printable ASCII: anything else is refused as InvalidParameter (not counted as a
    # failed attempt)
    password: Password
    otp: OneTimeCode = ""  # the TOTP code, when the account has a second factor
    # The network client's address, from a front-end that serves remote users (the web
    # UI); it selects the throttling source. Only panel and system peers may set it.
    remote_address: Address = ""


class SessionInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: Annotated[str, SECRET]  # only in the reply to Login: keep it secret (else empty)
    session: str  # public id, as in the audit log
    user: str  # the account logged in
    role: Role  # its role: what the session may do
    # "" or why the password must be changed before anything else: "temporary",
    # "expired", "policy" (it breaks the current rules)
    must_change: str
    idle_minutes: int  # the policy's idle time: the session ends after this long without a call


class CardLoginParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # the PIN of the card in the reader, 4-64 bytes; a wrong one counts towards the lockout
    # of the user the card is bound to
    pin: Annotated[bytearray, msgspec.Meta(min_length=4, max_length=64)]
    # As in Login: the network client's IP address, from a front-end (panel and system
    # peers only); "" for a local login.
    remote_address: Address = ""


class BindCardParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user: UserName  # the account; a card is bound to one account at most
    certificate: Annotated[str, msgspec.Meta(max_length=16384)]  # PEM; "" unbinds


class BindCardResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fingerprint: str  # SHA-256 of the certificate, "" when unbound


class ResumeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: Token  # as Login or LoginCard returned it; only the uid that logged in may use it


class WhoAmI(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    uid: int  # the caller's uid, as the socket reports it
    peer_class: str  # "system", "panel", "maintenance"
    user: str  # "" without a session
    role: str  # the session's role ("administrator", ...); "" without a session
    session: str  # the session's public id, as in the audit log; "" without a session
    # As in SessionInfo: why the password must be changed first; "" when it need not, or
    # without a session.
    must_change: str
    # Every privilege this connection has now, sorted (e.g. "auth", "status.read"): its
    # peer class's, plus its session role's unless the password must be changed first.
    privileges: list[str]


class ChangePasswordParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # the password now, printable ASCII (else InvalidParameter); a wrong one counts towards
    # the lockout
    current: Password
    new: Password  # must pass the policy, history included (else PasswordRejected)


class InitializeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user: UserName  # the administrator account to create: [a-z][a-z0-9._-]{0,31}
    password: Password  # not temporary; must pass the password policy


class AddUserParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user: UserName  # the new account's name: [a-z][a-z0-9._-]{0,31}
    role: Role  # what the account may do
    password: Password  # must pass the password policy
    temporary: bool = True  # valid temporary_days; the user must change it at first login


class SetPasswordParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user: UserName  # another account (one's own is refused: ChangePassword changes it)
    password: Password  # must pass the password policy, history included
    # True (the default): the user must change it at their next login, within the policy's
    # temporary_days.
    temporary: bool = True


class UserParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The account. For RequestRecovery: an administrator's, or a name no account has yet
    # (the administrator account to create).
    user: UserName


class UserInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One account, as the administrator manages it."""

    user: str  # the account name: [a-z][a-z0-9._-]{0,31}
    role: Role  # what the account may do
    created_at: str  # RFC 3339 UTC
    password_set_at: str  # RFC 3339 UTC, to the second: when the password was last set
    # The password was set by an administrator or a recovery: the user must change it at
    # the next login, within the policy's temporary_days.
    temporary: bool
    # Failed attempts in a row, counted towards the lockout. A successful login, a
    # successful reauthentication or an unlock resets it; the first failure after a lock
    # ran out counts from 1 again.
    failures: int
    locked_for_s: int  # 0 when not locked
    last_login_at: str  # RFC 3339 UTC; "" when the account never logged in
    totp: bool  # a TOTP second factor is active (enrolled and confirmed)
    card: str  # SHA-256 fingerprint of the bound card certificate, or ""


class UserList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    users: list[UserInfo]  # every account, by name


class UnlockResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    failures: int  # counted before the unlock


class PasswordParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # one's own password again, printable ASCII (else InvalidParameter); a wrong one counts
    # towards the lockout
    password: Password


class TotpEnrollment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    uri: str  # otpauth://totp/...: show it once (as a QR code) and forget it
    secret: str  # the same seed, base32, for typing into an authenticator


class CodeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: OneTimeCode  # the 6 digits the authenticator shows now (30 s steps)


class Empty(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RecoveryCode = Annotated[str, msgspec.Meta(max_length=16)]


class RecoveryRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    request: str  # its id (16 hex digits), for CompleteRecovery
    user: str  # the administrator account to recover (or to create)
    expires_in_s: int  # the panel shows its code until then


class PendingRecovery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The administrator recovery waiting for its code, for the operation panel to show."""

    request: str  # its id, as RequestRecovery returned it
    user: str  # the administrator account to recover (or to create)
    uid: int  # who asked (the maintenance console)
    code: str  # to be read at the panel and typed at the console, by a person
    expires_in_s: int  # seconds left (rounded up): show the code until then


class PendingRecoveries(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    requests: list[PendingRecovery]  # the one waiting; empty when none does


class CompleteRecoveryParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    request: RequestId  # the id RequestRecovery returned (to this same uid)
    code: RecoveryCode  # the 8 digits the operation panel shows; 3 wrong codes end the request
    password: Password  # temporary: to be changed at the first login


_LOGIN_ERRORS = (
    ErrorCode.AUTHENTICATION_FAILED,
    ErrorCode.ACCOUNT_LOCKED,
    ErrorCode.THROTTLED,
    ErrorCode.KEYS_UNAVAILABLE,
)
_SET_ERRORS = (ErrorCode.PASSWORD_REJECTED, ErrorCode.KEYS_UNAVAILABLE, ErrorCode.THROTTLED)

INITIALIZE_ADMINISTRATOR = Method(
    name="InitializeAdministrator",
    doc="First start only: create the administrator account. The device ships\n"
    "without a usable administrator password; until this is done status shows\n"
    "the notice administrator-unset.",
    params=InitializeParams,
    result=Empty,
    requires=Privilege.AUTH,
    errors=(ErrorCode.ALREADY_INITIALIZED, *_SET_ERRORS),
    sensitive=True,
)


LOGIN = Method(
    name="Login",
    doc="Log in with a password (and the TOTP code if the account has one). The\n"
    "session is attached to this connection. Three wrong attempts (by policy)\n"
    "lock the account; a locked account is refused whatever the password.",
    params=LoginParams,
    result=SessionInfo,
    requires=Privilege.AUTH,
    errors=(*_LOGIN_ERRORS, ErrorCode.SECOND_FACTOR_REQUIRED),
    sensitive=True,
)


LOGIN_CARD = Method(
    name="LoginCard",
    doc="Log in with the PKI card in the reader and its PIN: the certificate must\n"
    "chain to a configured trust anchor and be bound to a user, and the card\n"
    "must sign a fresh challenge. Wrong PINs count towards the lockout.",
    params=CardLoginParams,
    result=SessionInfo,
    requires=Privilege.AUTH,
    errors=(*_LOGIN_ERRORS, ErrorCode.CERTIFICATE_REJECTED, ErrorCode.CARD_UNUSABLE),
    sensitive=True,
)


RESUME = Method(
    name="Resume",
    doc="Attach an existing session (by its token) to this connection. Only the\n"
    "uid that logged in can resume it.",
    params=ResumeParams,
    result=SessionInfo,
    requires=Privilege.AUTH,
    sensitive=True,
)


LOGOUT = Method(
    name="Logout",
    doc="End the session attached to this connection (everywhere).",
    params=NoParams,
    result=Empty,
    requires=Privilege.AUTH,
)


WHO_AM_I = Method(
    name="WhoAmI",
    doc="The peer, the session attached to this connection and what it may do.",
    params=NoParams,
    result=WhoAmI,
    requires=Privilege.AUTH,
)


CHANGE_PASSWORD = Method(
    name="ChangePassword",
    doc="Change one's own password: the current one is asked again (a wrong one\n"
    "counts towards the lockout); the new one must pass the policy.",
    params=ChangePasswordParams,
    result=Empty,
    requires=Privilege.AUTH,
    errors=(*_LOGIN_ERRORS, ErrorCode.PASSWORD_REJECTED),
    sensitive=True,
)


GET_POLICY = Method(
    name="GetPolicy",
    doc="The authentication policy: password rules, lockout, session times.",
    params=NoParams,
    result=AuthPolicy,
    requires=Privilege.AUTH,
)


SET_POLICY = Method(
    name="SetPolicy",
    doc="Replace the authentication policy (applies to every later password set,\n"
    "login and session).",
    params=AuthPolicy,
    result=AuthPolicy,
    requires=Privilege.USERS_ADMIN,
)


LIST_USERS = Method(
    name="ListUsers",
    doc="Every account with its role, password age, lockout and factors.",
    params=NoParams,
    result=UserList,
    requires=Privilege.USERS_READ,
)


REQUEST_RECOVERY = Method(
    name="RequestRecovery",
    doc="Root, when no administrator can log in: ask to recover the administrator\n"
    "user (an existing administrator's password is reset, or the account is\n"
    "created). The operation panel shows a code for it for expires_in_s; a\n"
    "newer request replaces this one. Audited and alerted.",
    params=UserParams,
    result=RecoveryRequest,
    requires=Privilege.USERS_RECOVER,
    errors=(ErrorCode.USER_EXISTS,),
)


PENDING_RECOVERIES = Method(
    name="PendingRecoveries",
    doc="The operation panel: the recovery waiting for its code, to show to the\n"
    "person at the device.",
    params=NoParams,
    result=PendingRecoveries,
    requires=Privilege.PRESENCE,
)


COMPLETE_RECOVERY = Method(
    name="CompleteRecovery",
    doc="Root again, with the code read at the panel: the administrator gets this\n"
    "temporary password (changed at the first login), its lockout is lifted.\n"
    "Three wrong codes end the request.",
    params=CompleteRecoveryParams,
    result=UserInfo,
    requires=Privilege.USERS_RECOVER,
    errors=(ErrorCode.RECOVERY_NOT_PENDING, ErrorCode.AUTHENTICATION_FAILED, *_SET_ERRORS),
    sensitive=True,
)


ADD_USER = Method(
    name="AddUser",
    doc="Create an account. The password is temporary unless said otherwise: the\n"
    "user must change it at first login, and it expires after temporary_days.",
    params=AddUserParams,
    result=UserInfo,
    requires=Privilege.USERS_ADMIN,
    errors=(ErrorCode.USER_EXISTS, *_SET_ERRORS),
    sensitive=True,
)


SET_USER_PASSWORD = Method(
    name="SetUserPassword",
    doc="Set another user's password (temporary by default); their sessions end.\n"
    "One's own password is changed with ChangePassword.",
    params=SetPasswordParams,
    result=Empty,
    requires=Privilege.USERS_ADMIN,
    errors=(ErrorCode.USER_NOT_FOUND, *_SET_ERRORS),
    sensitive=True,
)


UNLOCK_USER = Method(
    name="UnlockUser",
    doc="Lift a lockout before its time and reset the failure count.",
    params=UserParams,
    result=UnlockResult,
    requires=Privilege.USERS_ADMIN,
    errors=(ErrorCode.USER_NOT_FOUND,),
)


REMOVE_USER = Method(
    name="RemoveUser",
    doc="Delete an account; its verifiers and seed are overwritten, its sessions end.",
    params=UserParams,
    result=Empty,
    requires=Privilege.USERS_ADMIN,
    errors=(
        ErrorCode.USER_NOT_FOUND,
        ErrorCode.LAST_ADMINISTRATOR,
        ErrorCode.KEYS_UNAVAILABLE,
    ),
)


BIND_CARD = Method(
    name="BindCard",
    doc="Bind a PKI card's certificate (PEM) to a user; it must be acceptable now.\n"
    "An empty certificate unbinds.",
    params=BindCardParams,
    result=BindCardResult,
    requires=Privilege.USERS_ADMIN,
    errors=(ErrorCode.USER_NOT_FOUND, ErrorCode.CERTIFICATE_REJECTED),
)


ENROLL_TOTP = Method(
    name="EnrollTotp",
    doc="Start (or replace) one's own TOTP second factor, administrator and service\n"
    "roles only: the password again, then a new seed, active once ConfirmTotp\n"
    "accepts a code from it.",
    params=PasswordParams,
    result=TotpEnrollment,
    requires=Privilege.AUTH,
    errors=_LOGIN_ERRORS,
    sensitive=True,
)


CONFIRM_TOTP = Method(
    name="ConfirmTotp",
    doc="Activate the enrolled seed with a current code from the authenticator.",
    params=CodeParams,
    result=Empty,
    requires=Privilege.AUTH,
    errors=(ErrorCode.AUTHENTICATION_FAILED, ErrorCode.KEYS_UNAVAILABLE),
)


RESET_TOTP = Method(
    name="ResetTotp",
    doc="Remove a user's second factor (a lost authenticator).",
    params=UserParams,
    result=Empty,
    requires=Privilege.USERS_ADMIN,
    errors=(ErrorCode.USER_NOT_FOUND, ErrorCode.KEYS_UNAVAILABLE),
)


AUTH = Interface(
    name="io.mfpsecd.Auth",
    module=__name__,
    doc=(
        "Logging in and out, sessions, passwords and the TOTP second factor, user\n"
        "accounts and roles, and the administrator's authentication policy."
    ),
    methods=(
        INITIALIZE_ADMINISTRATOR,
        LOGIN,
        LOGIN_CARD,
        RESUME,
        LOGOUT,
        WHO_AM_I,
        CHANGE_PASSWORD,
        GET_POLICY,
        SET_POLICY,
        LIST_USERS,
        REQUEST_RECOVERY,
        PENDING_RECOVERIES,
        COMPLETE_RECOVERY,
        ADD_USER,
        SET_USER_PASSWORD,
        UNLOCK_USER,
        REMOVE_USER,
        BIND_CARD,
        ENROLL_TOTP,
        CONFIRM_TOTP,
        RESET_TOTP,
    ),
)
