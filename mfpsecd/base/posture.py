"""The security posture (SPEC S-1) as each capability reports its part: one item per
protection, with its state and the setting behind it. The system capability gathers the
items, remembers since when each has been as it is, and serves them to the panel."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class PostureState(enum.Enum):
    """Whether a protection of the S-1 posture is in force."""

    ON = "on"
    OFF = "off"  # not in force, or its part of the daemon could not be read (detail says)
    NOT_APPLICABLE = "not_applicable"  # the board has nothing this protection applies to
    NOT_MANAGED = "not_managed"  # something outside this daemon manages it, if anything


class PostureId(enum.Enum):
    """The S-1 items, in the order the panel shows them. Stable: never renamed."""

    ADMIN_PASSWORD = "admin-password"  # noqa: S105 (an item name, not a password)
    STORAGE_ENCRYPTION = "storage-encryption"
    TEMPORARY_DATA_OVERWRITE = "temporary-data-overwrite"
    STORAGE_LOCK_PASSWORD = "storage-lock-password"  # noqa: S105 (an item name)
    AUTO_DOCUMENT_DELETION = "auto-document-deletion"
    ENCRYPTED_PDF_DELETION = "encrypted-pdf-deletion"
    ID_PRINT_DELETION = "id-print-deletion"
    SECURE_DOCUMENT_DELETION = "secure-document-deletion"
    BACKUP_SCHEDULE = "backup-schedule"
    IP_FILTER = "ip-filter"
    FIRMWARE_VERIFICATION = "firmware-verification"
    TPM = "tpm"
    AUDIT_FORWARDING = "audit-forwarding"
    USB_PORTS = "usb-ports"
    VIRUS_SCAN = "virus-scan"


TITLES: dict[PostureId, str] = {
    PostureId.ADMIN_PASSWORD: "Administrator password",
    PostureId.STORAGE_ENCRYPTION: "Storage encryption",
    PostureId.TEMPORARY_DATA_OVERWRITE: "Temporary data overwrite",
    PostureId.STORAGE_LOCK_PASSWORD: "Storage lock password",
    PostureId.AUTO_DOCUMENT_DELETION: "Auto document deletion",
    PostureId.ENCRYPTED_PDF_DELETION: "Encrypted PDF deletion",
    PostureId.ID_PRINT_DELETION: "ID & Print deletion",
    PostureId.SECURE_DOCUMENT_DELETION: "Secure document deletion",
    PostureId.BACKUP_SCHEDULE: "Backup schedule",
    PostureId.IP_FILTER: "IP filter",
    PostureId.FIRMWARE_VERIFICATION: "Firmware verification",
    PostureId.TPM: "TPM",
    PostureId.AUDIT_FORWARDING: "Audit forwarding",
    PostureId.USB_PORTS: "USB port policy",
    PostureId.VIRUS_SCAN: "Virus scan",
}


# How an item whose capability could not say is reported (off, with one of these as the
# start of its detail): a security level read from the posture marks itself weakened.
UNREADABLE = "could not be read"
UNREPORTED = "its part of the daemon did not report it"


@dataclass(frozen=True)
class PostureItem:
    """One protection as its capability sees it now."""

    id: PostureId
    state: PostureState
    setting: str  # the setting behind the state, as a person reads it
    detail: str = ""  # why it is in this state, when that is not obvious from the setting


# Each capability that owns items gives one of these to the composition root.
PostureSource = Callable[[], Awaitable[list[PostureItem]]]
