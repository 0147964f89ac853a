"""The S-1 posture (issue 25): each capability's item from its facts, and the book that
gathers them, remembers since when, and never shows an item on that it could not read."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mfpsecd.audit.forwarder import DestinationStatus
from mfpsecd.audit.posture import audit_forwarding
from mfpsecd.auth.api import AuthPolicy, PasswordPolicy
from mfpsecd.auth.model.password_policy import rules_digest
from mfpsecd.auth.posture import admin_password
from mfpsecd.auth.user_store import UserRow
from mfpsecd.base.access import Role
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.firmware.posture import firmware_verification
from mfpsecd.firmware.service import BootRecord
from mfpsecd.keys.chain import ChainState, KeyFacts
from mfpsecd.keys.posture import tpm
from mfpsecd.store.posture import store_posture
from mfpsecd.store.service import StoreSettings
from mfpsecd.system.posture import PostureBook
from mfpsecd.wipe.model.media_identify import AtaIdentity
from mfpsecd.wipe.model.overwrite_plan import Medium
from mfpsecd.wipe.model.purge_plan import Capabilities
from mfpsecd.wipe.ports import MediaProbe
from mfpsecd.wipe.posture import DiskFacts, storage_lock
from tests.support.fakeclock import FakeClock

NOW = 1_800_000_000.0
POLICY = AuthPolicy()
RULES = rules_digest(POLICY.password)


def _user(name: str, role: Role = Role.ADMINISTRATOR, **kw: object) -> UserRow:
    fields: dict[str, object] = {
        "name": name,
        "role": role,
        "created_at": "",
        "password_set_at": NOW - 86400,
        "temporary": False,
        "failures": 0,
        "locked_until": 0.0,
        "last_login_at": "",
        "card_fingerprint": "",
        "totp_enabled": False,
        "totp_last_step": -1,
        "rules_checked": RULES,
        "rules_met": True,
    }
    fields.update(kw)
    return UserRow(**fields)  # type: ignore[arg-type]


def test_admin_password_is_on_only_when_chosen_current_and_within_the_rules() -> None:
    def state(users: list[UserRow], policy: AuthPolicy = POLICY) -> tuple[str, str]:
        item = admin_password(users, policy, NOW)
        assert item.id is PostureId.ADMIN_PASSWORD
        return item.state.value, item.setting

    assert state([]) == ("off", "unset")  # the device ships with none
    assert state([_user("bob", Role.USER)]) == ("off", "unset")
    assert state([_user("admin", temporary=True)]) == ("off", "temporary")
    expiring = AuthPolicy(password=PasswordPolicy(expiry_days=1))
    assert state([_user("admin", password_set_at=NOW - 2 * 86400)], expiring)[0] == "off"
    broken = admin_password([_user("admin", rules_met=False)], POLICY, NOW)
    assert (broken.state, broken.setting) == (PostureState.OFF, "breaks the password rules")
    assert "admin" in broken.detail and "change it" in broken.detail
    assert state([_user("admin")])[0] == "on"
    # Made stricter since the last check: not known to break them until the next login.
    stricter = AuthPolicy(password=PasswordPolicy(min_length=20))
    item = admin_password([_user("admin", rules_met=False)], stricter, NOW)
    assert item.state is PostureState.ON and "next login of admin" in item.detail


def test_store_items_follow_the_medium_and_the_deletion_policies() -> None:
    settings = StoreSettings(box_retention_s=30 * 86400, encrypted_pdf_retention_s=0)
    hdd = {
        i.id: i
        for i in store_posture(
            settings,
            encryption="AES-256-GCM",
            key_chain="ready",
            medium=Medium.HDD,
            not_in_place="",
            temporary_mode=2,
        )
    }
    assert hdd[PostureId.STORAGE_ENCRYPTION].state is PostureState.ON
    assert hdd[PostureId.TEMPORARY_DATA_OVERWRITE].state is PostureState.ON
    assert hdd[PostureId.TEMPORARY_DATA_OVERWRITE].setting.startswith("Temporary data mode 2: ")
    assert hdd[PostureId.AUTO_DOCUMENT_DELETION].setting == "box documents deleted after 30 days"
    assert hdd[PostureId.ENCRYPTED_PDF_DELETION].state is PostureState.OFF
    assert hdd[PostureId.ID_PRINT_DELETION].setting == (
        "ID & Print jobs deleted when printed or after 1 day"
    )
    assert hdd[PostureId.SECURE_DOCUMENT_DELETION].state is PostureState.ON
    elsewhere = store_posture(
        settings,
        encryption="AES-256-GCM",
        key_chain="locked",
        medium=Medium.HDD,
        not_in_place="btrfs copies on write",
        temporary_mode=1,
    )
    by_id = {i.id: i for i in elsewhere}
    assert by_id[PostureId.TEMPORARY_DATA_OVERWRITE].state is PostureState.OFF
    assert "btrfs copies on write" in by_id[PostureId.TEMPORARY_DATA_OVERWRITE].detail
    assert "locked" in by_id[PostureId.STORAGE_ENCRYPTION].detail
    flash = store_posture(
        settings,
        encryption="x",
        key_chain="ready",
        medium=Medium.SSD,
        not_in_place="",
        temporary_mode=2,
    )
    assert flash[1].state is PostureState.NOT_APPLICABLE and "crypto-erase" in flash[1].detail


def _ata(enabled: bool) -> AtaIdentity:
    return AtaIdentity(
        serial="S1",
        model="disk",
        firmware="fw",
        rotation_rate=0,
        security_supported=True,
        security_enabled=enabled,
        security_locked=False,
        security_frozen=False,
        security_count_expired=False,
        enhanced_erase_supported=True,
        erase_minutes=2,
        enhanced_erase_minutes=2,
        sanitize_supported=False,
        sanitize_crypto=False,
        sanitize_overwrite=False,
        sanitize_block=False,
        trim_supported=False,
        sectors=1 << 20,
    )


def _probe(caps: Capabilities) -> MediaProbe:
    return MediaProbe(caps, {}, ())


def test_storage_lock_reads_each_drives_own_security_state() -> None:
    files = [DiskFacts("hdd0", _probe(Capabilities("file", None)))]
    item = storage_lock(files)
    assert item.state is PostureState.NOT_APPLICABLE and "hdd0: file" in item.detail
    locked = [DiskFacts("sda", _probe(Capabilities("ata", True, ata=_ata(True))))]
    assert storage_lock(locked).state is PostureState.ON
    assert storage_lock(locked).setting == "ATA user password set on sda"
    open_ = [*locked, DiskFacts("sdb", _probe(Capabilities("ata", True, ata=_ata(False))))]
    assert (storage_lock(open_).state, storage_lock(open_).detail) == (
        PostureState.OFF,
        "no ATA user password on sdb",
    )
    unknown = [DiskFacts("sda", None, "Permission denied")]
    assert storage_lock(unknown).state is PostureState.OFF


def _facts(**kw: object) -> KeyFacts:
    fields: dict[str, object] = {
        "state": ChainState.READY,
        "reason": "",
        "software_keys": False,
        "tpm_backend": "device",
        "tpm_manufacturer": "IFX",
        "tpm_firmware": "7.85",
        "bound_to": "PCR 9",
        "wrapping_fingerprint": "",
        "identity_fingerprint": "",
        "master_generation": 1,
        "created_at": "",
        "rotated_at": "",
        "last_backup_at": "",
        "backups": 0,
        "rotation_pending": False,
    }
    fields.update(kw)
    return KeyFacts(**fields)  # type: ignore[arg-type]


def test_tpm_firmware_and_forwarding_items() -> None:
    assert tpm(_facts()).state is PostureState.ON
    assert tpm(_facts()).setting == "device TPM (IFX 7.85)"
    assert tpm(_facts(software_keys=True)).state is PostureState.OFF
    locked = tpm(_facts(state=ChainState.LOCKED, reason="restore the key backup"))
    assert (locked.state, locked.detail) == (PostureState.OFF, "restore the key backup")

    ok = BootRecord(result="verified", at="t", mode="enhanced", slot="a", version="1.0")
    assert firmware_verification(True, ok).state is PostureState.ON
    assert firmware_verification(False, ok).state is PostureState.OFF
    failed = BootRecord(result="failed", at="t", mode="enhanced", reason="bad signature")
    assert "bad signature" in firmware_verification(True, failed).detail
    assert firmware_verification(True, None).state is PostureState.OFF

    assert audit_forwarding([]).state is PostureState.OFF
    siem = DestinationStatus("siem", "tls", "cef", "10.0.0.5:6514", connected=False, backlog=7)
    item = audit_forwarding([siem])
    assert item.state is PostureState.ON
    assert item.setting == "siem: cef over tls to 10.0.0.5:6514"
    assert item.detail == "siem not connected (backlog 7)"


def test_the_book_keeps_since_fails_closed_and_names_every_item(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        state = SqliteState(tmp_path / "state.sqlite3")
        await state.open()
        book = PostureBook(state, clock)
        ip = [PostureItem(PostureId.IP_FILTER, PostureState.ON, "2 ranges")]

        async def net() -> list[PostureItem]:
            return ip

        async def broken() -> list[PostureItem]:
            raise MfpsecError(ErrorCode.KEYS_UNAVAILABLE, reason="locked")

        book.add_source([PostureId.IP_FILTER], net)
        book.add_source([PostureId.TPM, PostureId.BACKUP_SCHEDULE], broken)
        first = await book.current()
        assert [e.item.id for e in first] == list(PostureId)  # all 13, in the panel's order
        by_id = {e.item.id: e for e in first}
        assert by_id[PostureId.IP_FILTER].item.state is PostureState.ON
        for failed in (PostureId.TPM, PostureId.BACKUP_SCHEDULE):
            assert by_id[failed].item.state is PostureState.OFF  # never on unchecked
            assert "io.mfpsecd.Keys.KeysUnavailable" in by_id[failed].item.detail
        assert by_id[PostureId.STORAGE_ENCRYPTION].item.state is PostureState.NOT_MANAGED
        since = by_id[PostureId.IP_FILTER].since

        await clock.advance(3600)
        again = {e.item.id: e for e in await book.current()}
        assert again[PostureId.IP_FILTER].since == since  # unchanged: the same since
        ip[0] = PostureItem(PostureId.IP_FILTER, PostureState.ON, "3 ranges")
        await clock.advance(60)
        changed = {e.item.id: e for e in await book.current()}
        assert changed[PostureId.IP_FILTER].since > since
        await state.close()

        reopened = SqliteState(tmp_path / "state.sqlite3")  # a restart keeps it
        await reopened.open()
        later = PostureBook(reopened, clock)
        later.add_source([PostureId.IP_FILTER], net)
        await clock.advance(60)
        after = {e.item.id: e for e in await later.current()}
        assert after[PostureId.IP_FILTER].since == changed[PostureId.IP_FILTER].since
        await reopened.close()

    asyncio.run(scenario())
