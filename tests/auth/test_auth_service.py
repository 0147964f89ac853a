"""Accounts, password logins, lockout, sessions, password changes and TOTP (A-2..A-4,
A-7, A-9), in-process on a real SQLite store, key chain (software keys) and audit log."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest

from mfpsecd.audit.events import EventType
from mfpsecd.audit.log_format import Outcome, Subject
from mfpsecd.auth.accounts import totp_seed_name
from mfpsecd.auth.api import AuthPolicy, CharClass, LockoutPolicy, PasswordPolicy
from mfpsecd.auth.model import totp
from mfpsecd.auth.model.throttle import ThrottleLimits
from mfpsecd.auth.user_store import verifier_name
from mfpsecd.base.access import Privilege, Role
from mfpsecd.base.errors import ErrorCode, MfpsecError
from tests.support.auth_stack import (
    ADMIN_PW,
    CLI,
    USER_PW,
    code_of,
    login,
    pw,
    refused,
    seat,
    stack,
)
from tests.support.fakeclock import FakeClock, settle


def test_first_start_needs_an_administrator_and_only_one_initialisation(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            assert not s.auth.accounts.administrator_exists
            with pytest.raises(MfpsecError) as weak:
                await s.auth.accounts.initialize("admin", pw("short"))
            assert weak.value.code is ErrorCode.PASSWORD_REJECTED
            assert weak.value.params["rules"] == "min_length"
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            assert s.auth.accounts.administrator_exists
            with pytest.raises(MfpsecError) as again:
                await s.auth.accounts.initialize("other", pw(ADMIN_PW))
            assert again.value.code is ErrorCode.ALREADY_INITIALIZED
            st, token = await login(s, "admin", ADMIN_PW)
            assert st.session is not None and st.session.role is Role.ADMINISTRATOR
            assert Privilege.USERS_ADMIN in st.grants and len(token) >= 40
            # The verifier is sealed in the secret store, not in the users table.
            with await s.secrets.get(verifier_name("admin")) as record:
                assert len(record) == 54 and ADMIN_PW.encode() not in bytes(record.view())

    asyncio.run(go())


@pytest.mark.sfr("FIA_AFL.1")
@pytest.mark.spec("A-4", "A-5", "A-6")
def test_third_failure_locks_right_password_refused_until_the_time_is_up(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            assert await refused(s, "admin", "wrong-1") is ErrorCode.AUTHENTICATION_FAILED
            assert await refused(s, "admin", "wrong-2") is ErrorCode.AUTHENTICATION_FAILED
            assert await refused(s, "admin", "wrong-3") is ErrorCode.AUTHENTICATION_FAILED
            # Locked: the right password gets the same answer as a wrong one would.
            with pytest.raises(MfpsecError) as locked:
                await login(s, "admin", ADMIN_PW)
            assert locked.value.code is ErrorCode.ACCOUNT_LOCKED
            assert locked.value.params == {"retry_after_s": 1800}
            assert await refused(s, "admin", "wrong-4") is ErrorCode.ACCOUNT_LOCKED
            assert len(await s.events(EventType.AUTH_LOCKOUT)) == 1
            await s.clock.advance(29 * 60)
            assert await refused(s, "admin", ADMIN_PW) is ErrorCode.ACCOUNT_LOCKED
            await s.clock.advance(61)
            st, _ = await login(s, "admin", ADMIN_PW)
            assert st.session is not None
            # Success resets the count: two more failures do not lock.
            await refused(s, "admin", "wrong-5")
            await refused(s, "admin", "wrong-6")
            await login(s, "admin", ADMIN_PW)

    asyncio.run(go())


@pytest.mark.sfr("FIA_AFL.1")
@pytest.mark.spec("A-4", "A-5", "A-6")
def test_lock_survives_a_daemon_restart_and_admin_unlock_lifts_it(tmp_path: Path) -> None:
    async def go() -> None:
        clock = FakeClock()
        async with stack(tmp_path, clock) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            await s.auth.accounts.add_user("alice", Role.USER, pw(USER_PW), temporary=False)
            for i in range(3):
                await refused(s, "alice", f"wrong-{i}")
        async with stack(tmp_path, clock) as s:  # a new daemon on the same state
            assert await refused(s, "alice", USER_PW) is ErrorCode.ACCOUNT_LOCKED
            [alice] = [u for u in await s.auth.accounts.list_users() if u.name == "alice"]
            assert alice.failures == 3 and s.auth.accounts.locked(alice) > 1700
            assert await s.auth.accounts.unlock("alice") == 3
            st, _ = await login(s, "alice", USER_PW)
            assert st.session is not None and st.session.role is Role.USER

    asyncio.run(go())


@pytest.mark.sfr("FIA_AFL.1")
@pytest.mark.spec("A-4", "A-5", "A-6")
def test_fifty_concurrent_wrong_attempts_lock_once_and_count_three(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            results = await asyncio.gather(
                *(login(s, "admin", f"wrong-{i}") for i in range(50)), return_exceptions=True
            )
            codes = [await code_of(r) for r in results]
            assert codes.count(ErrorCode.AUTHENTICATION_FAILED) == 3
            assert codes.count(ErrorCode.ACCOUNT_LOCKED) == 47
            failures = [
                e
                for e in await s.events(EventType.AUTH_LOGIN)
                if e.get("reason") == "wrong password"
            ]
            assert [e["failures"] for e in failures] == [1, 2, 3]
            assert len(await s.events(EventType.AUTH_LOCKOUT)) == 1
            [admin] = await s.auth.accounts.list_users()
            assert admin.failures == 3

    asyncio.run(go())


def test_unknown_user_names_are_answered_like_real_ones(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            for _ in range(3):
                assert await refused(s, "nobody", "x") is ErrorCode.AUTHENTICATION_FAILED
            assert await refused(s, "nobody", "x") is ErrorCode.ACCOUNT_LOCKED
            assert await refused(s, "Not A Name!", "x") is ErrorCode.AUTHENTICATION_FAILED

    asyncio.run(go())


@pytest.mark.sfr("FIA_USB.1", "FTA_SSL.3")
@pytest.mark.spec("A-10", "A-7")
def test_sessions_idle_timeout_peer_binding_and_logout(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            st, token = await login(s, "admin", ADMIN_PW)
            st.check(Privilege.USERS_ADMIN, s.auth.sessions)
            first = st.session
            assert first is not None
            # Another uid with the token gets nothing; the same uid resumes it.
            with pytest.raises(MfpsecError) as other:
                s.auth.resume(token, seat(uid=2000))
            assert other.value.code is ErrorCode.AUTHENTICATION_REQUIRED
            again = seat()
            assert s.auth.resume(token, again) is st.session
            # Use keeps it alive; ten idle minutes (the default) end it, whatever other
            # sessions do meanwhile.
            await s.clock.advance(9 * 60)
            st.check(Privilege.KEYS_ADMIN, s.auth.sessions)
            await s.clock.advance(5 * 60)
            await login(s, "admin", ADMIN_PW)  # someone else logs in
            await s.clock.advance(5 * 60 + 1)
            with pytest.raises(MfpsecError) as idle:
                st.check(Privilege.USERS_ADMIN, s.auth.sessions)
            assert idle.value.code is ErrorCode.AUTHENTICATION_REQUIRED
            assert "timed out" in idle.value.params["reason"]
            with pytest.raises(MfpsecError):
                s.auth.resume(token, seat())
            # Logout ends the session for every connection that had it.
            st2, token2 = await login(s, "admin", ADMIN_PW)
            other_conn = seat()
            s.auth.resume(token2, other_conn)
            await s.auth.logout(st2, CLI)
            with pytest.raises(MfpsecError):
                other_conn.check(Privilege.USERS_ADMIN, s.auth.sessions)
            # Both ends are recorded: the timeout with its reason (FTA_SSL.3), the logout
            # as its user's own.
            ends = await s.events(EventType.AUTH_LOGOUT)
            assert [e.get("reason", "logout") for e in ends] == ["timeout", "logout"]
            assert ends[0]["session"] == first.id

    asyncio.run(go())


@pytest.mark.sfr("FDP_ACC.1", "FIA_ATD.1", "FMT_MSA.1", "FMT_SMR.1")
@pytest.mark.spec("A-10")
def test_roles_grant_what_the_spec_says(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            roles = {"carol": Role.AUDITOR, "sam": Role.SERVICE, "bob": Role.USER}
            for name, role in roles.items():
                await s.auth.accounts.add_user(
                    name, role, pw(USER_PW + role.value), temporary=False
                )
            expect = {"carol": {Privilege.AUDIT_READ}, "sam": {Privilege.KEYS_ADMIN}, "bob": set()}
            for name, allowed in expect.items():
                st, _ = await login(s, name, USER_PW + roles[name].value)
                for p in (
                    Privilege.AUDIT_READ,
                    Privilege.KEYS_ADMIN,
                    Privilege.USERS_ADMIN,
                    Privilege.SECRETS_WRITE,
                ):
                    if p in allowed:
                        st.check(p, s.auth.sessions)
                    else:
                        with pytest.raises(MfpsecError) as denied:
                            st.check(p, s.auth.sessions)
                        assert denied.value.code is ErrorCode.PERMISSION_DENIED

    asyncio.run(go())


def test_temporary_password_forces_a_change_and_expires_after_seven_days(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            await s.auth.accounts.add_user(
                "dave", Role.ADMINISTRATOR, pw("Temporary-pass-1"), temporary=True
            )
            st, _ = await login(s, "dave", "Temporary-pass-1")
            assert st.session is not None and st.session.must_change == "temporary"
            with pytest.raises(MfpsecError) as first:
                st.check(Privilege.USERS_ADMIN, s.auth.sessions)
            assert first.value.code is ErrorCode.AUTHENTICATION_REQUIRED
            await s.auth.change_own_password(
                st, pw("Temporary-pass-1"), pw("My-own-password-1"), CLI
            )
            st.check(Privilege.USERS_ADMIN, s.auth.sessions)  # lifted at once
            # Another temporary one, not used within 7 days: it no longer works.
            await s.auth.accounts.set_password("dave", pw("Temporary-pass-2"), temporary=True)
            await s.clock.advance(7 * 86400 + 60)
            assert await refused(s, "dave", "Temporary-pass-2") is (ErrorCode.AUTHENTICATION_FAILED)

    asyncio.run(go())


def test_unknown_and_real_names_answer_alike_across_a_restart(tmp_path: Path) -> None:
    """User-name enumeration: three failures lock a real account durably; an unknown
    name must answer the same way, and go on doing so after a power cycle."""

    async def go() -> None:
        clock = FakeClock()
        names = ("alice", "mallory")  # alice exists, mallory does not
        async with stack(tmp_path, clock) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            await s.auth.accounts.add_user("alice", Role.USER, pw(USER_PW), temporary=False)
            for name in names:
                answers = [await refused(s, name, f"wrong-{i}") for i in range(4)]
                assert answers == [ErrorCode.AUTHENTICATION_FAILED] * 3 + [
                    ErrorCode.ACCOUNT_LOCKED
                ], name
        async with stack(tmp_path, clock) as s:  # a new daemon on the same state
            for name in names:
                assert await refused(s, name, "wrong") is ErrorCode.ACCOUNT_LOCKED, name
            await clock.advance(31 * 60)  # the lock ends for both
            for name in names:
                assert await refused(s, name, "wrong") is ErrorCode.AUTHENTICATION_FAILED
        with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
            stored = conn.execute("SELECT name_hash FROM auth_phantoms").fetchall()
        assert stored == [(hashlib.sha256(b"mallory").digest(),)]  # never the name

    asyncio.run(go())


@pytest.mark.sfr("FIA_PMG_EXT.1")
@pytest.mark.spec("A-2", "A-3")
def test_password_changes_follow_the_policy_and_history(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            st, _ = await login(s, "admin", ADMIN_PW)
            current = ADMIN_PW
            for i in range(3):
                new = f"Rotation-password-{i}"
                await s.auth.change_own_password(st, pw(current), pw(new), CLI)
                current = new
            for old in (ADMIN_PW, "Rotation-password-0", current):
                with pytest.raises(MfpsecError) as reused:
                    await s.auth.change_own_password(st, pw(current), pw(old), CLI)
                assert reused.value.params["rules"] == "reused"
            with pytest.raises(MfpsecError) as several:
                await s.auth.change_own_password(st, pw(current), pw("admin-aaaa"), CLI)
            assert several.value.params["rules"] == "min_length,contains_user_id"
            # Re-authentication: a wrong current password is a counted failure.
            with pytest.raises(MfpsecError) as wrong:
                await s.auth.change_own_password(st, pw("not-it"), pw("Another-one-2026"), CLI)
            assert wrong.value.code is ErrorCode.AUTHENTICATION_FAILED
            [admin] = await s.auth.accounts.list_users()
            assert admin.failures == 1
            # A right one ends the run: wrong, change, wrong, wrong does not lock (3).
            new = "Another-one-2026"
            await s.auth.change_own_password(st, pw(current), pw(new), CLI)
            [admin] = await s.auth.accounts.list_users()
            assert admin.failures == 0
            for _ in range(2):
                with pytest.raises(MfpsecError) as wrong:
                    await s.auth.reauthenticate(st, pw("not-it"), CLI)
                assert wrong.value.code is ErrorCode.AUTHENTICATION_FAILED
            await s.auth.reauthenticate(st, pw(new), CLI)  # not locked

    asyncio.run(go())


def test_stricter_policy_and_expiry_prompt_a_change_at_login(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            strict = AuthPolicy(
                password=PasswordPolicy(min_length=20, required_classes=frozenset(CharClass))
            )
            await s.auth.set_policy(strict)
            st, _ = await login(s, "admin", ADMIN_PW)
            assert st.session is not None and st.session.must_change == "policy"
            await s.auth.set_policy(
                AuthPolicy(
                    password=PasswordPolicy(expiry_days=365), lockout=LockoutPolicy(max_failures=5)
                )
            )
            st, _ = await login(s, "admin", ADMIN_PW)
            assert st.session is not None and st.session.must_change == ""
            await s.clock.advance(366 * 86400)
            st, _ = await login(s, "admin", ADMIN_PW)
            assert st.session is not None and st.session.must_change == "expired"
            for i in range(4):
                await refused(s, "admin", f"wrong-{i}")
            assert await refused(s, "admin", "wrong") is ErrorCode.AUTHENTICATION_FAILED
            assert await refused(s, "admin", ADMIN_PW) is ErrorCode.ACCOUNT_LOCKED

    asyncio.run(go())


@pytest.mark.sfr("FCS_COP.1")
@pytest.mark.spec("A-9")
def test_totp_valid_previous_step_replayed_and_wrong_codes(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            st, _ = await login(s, "admin", ADMIN_PW)
            enrollment = await s.auth.enroll_totp(st, pw(ADMIN_PW), CLI)
            assert enrollment.uri.startswith("otpauth://totp/mfpsecd%3Aadmin?secret=")
            with await s.secrets.get(totp_seed_name("admin")) as seed:

                def code(offset: int = 0) -> str:
                    now = s.clock.now().timestamp()
                    return totp.hotp(seed.view(), totp.step_at(now) + offset)

                await s.auth.totp.confirm(st, code())
                await s.clock.advance(30)
                # The password alone is not enough any more, and without the code the
                # answer says nothing about the password: a wrong one gets the same.
                assert await refused(s, "admin", ADMIN_PW) is (ErrorCode.SECOND_FACTOR_REQUIRED)
                assert await refused(s, "admin", "not-the-password") is (
                    ErrorCode.SECOND_FACTOR_REQUIRED
                )
                await login(s, "admin", ADMIN_PW, code())  # valid
                assert await refused(s, "admin", ADMIN_PW, code()) is (
                    ErrorCode.AUTHENTICATION_FAILED
                )  # replayed
                await s.clock.advance(30)
                previous = code(-1)  # the step before now: within the ±1 window...
                assert await refused(s, "admin", ADMIN_PW, previous) is (
                    ErrorCode.AUTHENTICATION_FAILED
                )  # ...but it was the one used above
                await s.clock.advance(30)
                await login(s, "admin", ADMIN_PW, code(-1))  # an unused previous step
                wrong = "000000" if code() != "000000" else "111111"
                assert await refused(s, "admin", ADMIN_PW, wrong) is (
                    ErrorCode.AUTHENTICATION_FAILED
                )
                assert await refused(s, "admin", ADMIN_PW, code(-3)) is (
                    ErrorCode.AUTHENTICATION_FAILED
                )  # outside the window
                assert await refused(s, "admin", ADMIN_PW, code(-1)) is (
                    ErrorCode.AUTHENTICATION_FAILED
                )  # replayed: 3rd counted failure, locks
                assert await refused(s, "admin", ADMIN_PW, code()) is ErrorCode.ACCOUNT_LOCKED
            reasons = [
                e.get("reason")
                for e in await s.events(EventType.AUTH_LOGIN)
                if e["outcome"] is Outcome.FAILURE
            ]
            assert reasons.count("wrong one-time code") == 2
            assert reasons.count("one-time code used before") == 3
            assert len(await s.events(EventType.AUTH_LOCKOUT)) == 1

    asyncio.run(go())


@pytest.mark.sfr("FMT_SMR.1")
@pytest.mark.spec("A-10")
def test_removing_users_and_the_last_administrator(tmp_path: Path) -> None:
    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            with pytest.raises(MfpsecError) as last:
                await s.auth.accounts.remove_user("admin")
            assert last.value.code is ErrorCode.LAST_ADMINISTRATOR
            await s.auth.accounts.add_user("bob", Role.USER, pw(USER_PW), temporary=False)
            st, _ = await login(s, "bob", USER_PW)
            await s.auth.accounts.remove_user("bob")
            assert st.session is not None and st.session.ended
            with pytest.raises(MfpsecError) as gone:
                await s.secrets.get(verifier_name("bob"))
            assert gone.value.code is ErrorCode.SECRET_NOT_FOUND
            assert await refused(s, "bob", USER_PW) is ErrorCode.AUTHENTICATION_FAILED

    asyncio.run(go())


def test_password_attack_and_flood_from_one_source_are_detected_and_throttled(
    tmp_path: Path,
) -> None:
    limits = ThrottleLimits(failures=4, requests=6, block_factor=1, total_requests=1000)

    async def go() -> None:
        async with stack(tmp_path, limits=limits) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            remote = Subject(origin="network", uid=0, pid=1, address="192.0.2.9")
            codes = []
            for i in range(8):  # different accounts: A-5 counts per source, not per user
                with pytest.raises(MfpsecError) as exc:
                    await s.auth.login(f"user{i}", pw("guess"), "", seat(0), remote)
                codes.append(exc.value.code)
            assert codes == [ErrorCode.AUTHENTICATION_FAILED] * 6 + [ErrorCode.THROTTLED] * 2
            floods = await s.events(EventType.AUTH_FLOOD)
            assert [(e["kind"], e["object"]) for e in floods] == [
                ("password-attack", "ip:192.0.2.9"),
                ("request-flood", "ip:192.0.2.9"),
            ]
            # Another source is not affected; the window's end lifts the block.
            await login(s, "admin", ADMIN_PW)
            await s.clock.advance(61)
            with pytest.raises(MfpsecError) as again:
                await s.auth.login("user0", pw("guess"), "", seat(0), remote)
            assert again.value.code is ErrorCode.AUTHENTICATION_FAILED

    asyncio.run(go())


@pytest.mark.sfr("FAU_GEN.1", "FTA_SSL.3")
@pytest.mark.spec("A-7", "L-1")
def test_a_service_engineers_session_is_recorded_from_start_to_end(tmp_path: Path) -> None:
    """FAU_GEN.1: maintenance.session start at the service engineer's login, end at the
    logout, at a timeout noticed by the periodic sweep, or when an administrator resets
    the password; an ordinary user's session is no maintenance session."""

    async def go() -> None:
        async with stack(tmp_path) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            await s.auth.accounts.add_user("sam", Role.SERVICE, pw(USER_PW), temporary=False)
            await s.auth.accounts.add_user("bob", Role.USER, pw(USER_PW), temporary=False)
            first, _ = await login(s, "sam", USER_PW)
            await s.auth.logout(first, CLI)
            await login(s, "sam", USER_PW)  # left idle
            await login(s, "bob", USER_PW)
            await s.clock.advance(s.auth.policy.session.idle_minutes * 60 + 1)
            s.auth.sessions.expire()  # what report_suppressed does every window
            await login(s, "sam", USER_PW)
            await s.auth.accounts.set_password("sam", pw("Reset-password-2026"), temporary=True)
            await settle()
            events = [
                (e["object"], e["phase"], e.get("reason", ""))
                for e in await s.events(EventType.MAINTENANCE_SESSION)
            ]
            assert events == [
                ("sam", "start", ""),
                ("sam", "end", "logout"),
                ("sam", "start", ""),
                ("sam", "end", "timeout"),
                ("sam", "start", ""),
                ("sam", "end", "ended by the administrator"),
            ]

    asyncio.run(go())
