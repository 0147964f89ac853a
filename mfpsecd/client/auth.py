"""Typed calls of io.mfpsecd.Auth. Passwords go as bytearrays and are zeroed here once
sent; the session token comes back once, from Login."""

from __future__ import annotations

import msgspec

from mfpsecd.api import auth
from mfpsecd.varlink.client import Connection

_session = msgspec.json.Decoder(auth.SessionInfo)
_whoami = msgspec.json.Decoder(auth.WhoAmI)
_policy = msgspec.json.Decoder(auth.AuthPolicy)
_users = msgspec.json.Decoder(auth.UserList)
_user = msgspec.json.Decoder(auth.UserInfo)
_unlock = msgspec.json.Decoder(auth.UnlockResult)
_totp = msgspec.json.Decoder(auth.TotpEnrollment)
_bound = msgspec.json.Decoder(auth.BindCardResult)
_recovery = msgspec.json.Decoder(auth.RecoveryRequest)
_pending = msgspec.json.Decoder(auth.PendingRecoveries)

_IFACE = "io.mfpsecd.Auth."


class AuthClient:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _secret_call(
        self, method: str, params: dict[str, object], *secrets: bytearray
    ) -> msgspec.Raw:
        return self._conn.call_secret(_IFACE + method, params, *secrets)

    def initialize(self, user: str, password: bytearray) -> None:
        self._secret_call("InitializeAdministrator", {"user": user, "password": password}, password)

    def login(
        self, user: str, password: bytearray, otp: str = "", remote_address: str = ""
    ) -> auth.SessionInfo:
        params: dict[str, object] = {"user": user, "password": password}
        if otp:
            params["otp"] = otp
        if remote_address:
            params["remote_address"] = remote_address
        return _session.decode(self._secret_call("Login", params, password))

    def login_card(self, pin: bytearray, remote_address: str = "") -> auth.SessionInfo:
        params: dict[str, object] = {"pin": pin}
        if remote_address:
            params["remote_address"] = remote_address
        return _session.decode(self._secret_call("LoginCard", params, pin))

    def bind_card(self, user: str, certificate_pem: str) -> str:
        return _bound.decode(
            self._conn.call(_IFACE + "BindCard", {"user": user, "certificate": certificate_pem})
        ).fingerprint

    def resume(self, token: str) -> auth.SessionInfo:
        return _session.decode(self._conn.call(_IFACE + "Resume", {"token": token}))

    def logout(self) -> None:
        self._conn.call(_IFACE + "Logout")

    def whoami(self) -> auth.WhoAmI:
        return _whoami.decode(self._conn.call(_IFACE + "WhoAmI"))

    def change_password(self, current: bytearray, new: bytearray) -> None:
        self._secret_call("ChangePassword", {"current": current, "new": new}, current, new)

    def policy(self) -> auth.AuthPolicy:
        return _policy.decode(self._conn.call(_IFACE + "GetPolicy"))

    def set_policy(self, policy: auth.AuthPolicy) -> auth.AuthPolicy:
        return _policy.decode(self._conn.call(_IFACE + "SetPolicy", policy))

    def users(self) -> list[auth.UserInfo]:
        return _users.decode(self._conn.call(_IFACE + "ListUsers")).users

    def add_user(self, user: str, role: str, password: bytearray, temporary: bool) -> auth.UserInfo:
        return _user.decode(
            self._secret_call(
                "AddUser",
                {"user": user, "role": role, "password": password, "temporary": temporary},
                password,
            )
        )

    def set_password(self, user: str, password: bytearray, temporary: bool) -> None:
        self._secret_call(
            "SetUserPassword",
            {"user": user, "password": password, "temporary": temporary},
            password,
        )

    def unlock(self, user: str) -> int:
        return _unlock.decode(self._conn.call(_IFACE + "UnlockUser", {"user": user})).failures

    def remove(self, user: str) -> None:
        self._conn.call(_IFACE + "RemoveUser", {"user": user})

    def enroll_totp(self, password: bytearray) -> auth.TotpEnrollment:
        return _totp.decode(self._secret_call("EnrollTotp", {"password": password}, password))

    def confirm_totp(self, code: str) -> None:
        self._conn.call(_IFACE + "ConfirmTotp", {"code": code})

    def reset_totp(self, user: str) -> None:
        self._conn.call(_IFACE + "ResetTotp", {"user": user})

    def request_recovery(self, user: str) -> auth.RecoveryRequest:
        return _recovery.decode(self._conn.call(_IFACE + "RequestRecovery", {"user": user}))

    def pending_recoveries(self) -> list[auth.PendingRecovery]:
        """The operation panel's call: the code to show to the person at the device."""
        return _pending.decode(self._conn.call(_IFACE + "PendingRecoveries")).requests

    def complete_recovery(self, request: str, code: str, password: bytearray) -> auth.UserInfo:
        return _user.decode(
            self._secret_call(
                "CompleteRecovery",
                {"request": request, "code": code, "password": password},
                password,
            )
        )
