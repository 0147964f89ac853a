"""The administrator password's part of the S-1 posture (A-3): the device ships with no
usable administrator password, so the item is on once every administrator chose their
own, it has not expired, and it met the password rules in force when last checked."""

from __future__ import annotations

from mfpsecd.auth.model.password_policy import rules_digest
from mfpsecd.auth.model.policy import AuthPolicy
from mfpsecd.auth.user_store import UserRow
from mfpsecd.base.access import Role
from mfpsecd.base.posture import PostureId, PostureItem, PostureState

DAY_S = 86400.0


def admin_password(users: list[UserRow], policy: AuthPolicy, now: float) -> PostureItem:
    admins = [u for u in users if u.role is Role.ADMINISTRATOR]
    if not admins:
        return _off("unset", "no administrator password is set yet: set one now")
    temporary = [u.name for u in admins if u.temporary]
    if temporary:
        return _off(
            "temporary",
            f"a temporary password ({', '.join(temporary)}): choose your own at the next login",
        )
    days = policy.password.expiry_days
    expired = [u.name for u in admins if days and now - u.password_set_at > days * DAY_S]
    if expired:
        return _off("expired", f"expired ({', '.join(expired)}): change it at the next login")
    rules = rules_digest(policy.password)
    breaking = [u.name for u in admins if u.rules_checked == rules and not u.rules_met]
    if breaking:
        return _off(
            "breaks the password rules",
            f"{', '.join(breaking)}: the password breaks the current password rules; change it",
        )
    unchecked = [u.name for u in admins if u.rules_checked != rules]
    return PostureItem(
        PostureId.ADMIN_PASSWORD,
        PostureState.ON,
        "chosen by the administrator; meets the password rules",
        (
            f"checked against the current rules at the next login of {', '.join(unchecked)}"
            if unchecked
            else ""
        ),
    )


def _off(setting: str, detail: str) -> PostureItem:
    return PostureItem(PostureId.ADMIN_PASSWORD, PostureState.OFF, setting, detail)
