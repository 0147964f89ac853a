"""io.mfpsecd.Store: the encrypted job store (SPEC E-1..E-4, S-1).

Users see and delete their own objects, administrators everyone's; the service engineer
sees the store's state and may purge it (crypto-erase of every object, after giving their
password again). No method returns object contents or keys.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from mfpsecd.auth.api import ReauthPassword
from mfpsecd.base.access import Privilege
from mfpsecd.base.errors import ErrorCode
from mfpsecd.varlink.descriptors import Descriptor
from mfpsecd.varlink.schema import Interface, Method, NoParams

ObjectId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{8}-[0-9a-f]{20}\Z")]
# No C0/C1 control characters: a name with a newline, a CR or an escape sequence would
# forge lines or drive the terminal of whoever lists the objects.
Label = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]+\Z")
]
Owner = Annotated[str, msgspec.Meta(pattern=r"^([a-z][a-z0-9._-]{0,31})?\Z")]
SourceName = Annotated[
    str,
    msgspec.Meta(pattern=r"^(print|fax-received|email-received|scan-to-send|fax-to-send)\Z"),
]
KindName = Annotated[
    str, msgspec.Meta(pattern=r"^(spool|box|secure-print|encrypted-pdf|id-print)\Z")
]


class StoreStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    objects: int  # stored now, every owner's
    bytes: int  # plaintext
    sealed_bytes: int  # on disk
    by_kind: dict[str, int]  # "spool", "box", "secure-print", "encrypted-pdf", "id-print"
    encryption: str  # the construction, e.g. "AES-256-GCM, 64 KiB segments, a key per object"
    key_chain: str  # "ready", "locked", ...: objects can be stored and read only when ready
    medium: str  # the disk holding the store (board profile): hdd, ssd, ...
    delete_method: str  # what a delete does on this medium
    directory: str  # where the sealed objects are kept on the device
    box_retention_days: int  # 0: kept until deleted
    secure_print_timeout_hours: int  # 1-720: a secure-print job not printed is deleted then
    encrypted_pdf_retention_days: int = 1  # 0: kept until deleted
    id_print_timeout_hours: int = 24  # 1-720: an ID & Print job not printed is deleted then


class StoredObject(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An object of the job store: what it is, never its contents."""

    id: str  # "<UTC date stored, YYYYMMDD>-<20 hex digits>"
    owner: str  # the user it belongs to; untrusted text: escape it to show it
    # The job it belongs to, as Put gave it; "" when it cannot be unsealed (the key chain
    # is not ready, or the record is damaged). Untrusted text: escape it to show it.
    job: str
    kind: str  # spool, box, secure-print, encrypted-pdf or id-print (see PutParams.kind)
    # Its name, as Put gave it; "" when it cannot be unsealed, as job. Untrusted text:
    # escape it to show it.
    name: str
    size: int  # plaintext bytes
    sealed_size: int  # bytes on disk (the ciphertext)
    created_at: str  # RFC 3339 UTC
    expires_at: str  # RFC 3339 UTC; "" when only an explicit delete removes it
    # Its virus scan (V-1): "clean"; "not-scanned" (the scan failed and scan.on_failure
    # stores such data); "" (stored without a scan: none configured, or before).
    scan: str = ""


class StoredObjects(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    objects: list[StoredObject]  # oldest first


class ObjectParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    object: ObjectId  # an object's id (StoredObject.id)


class PutParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    descriptor: Descriptor  # readable: a file or a pipe; read to its end
    job: Label  # the job the data belongs to: 1-128 characters, no control characters
    # spool: a running job's data (its job deletes it); box: a user box document, deleted
    # after box_retention_days; encrypted-pdf: a scan kept for its owner to fetch, deleted
    # after encrypted_pdf_retention_days; secure-print, id-print: held until printed
    # (MarkPrinted) or deleted after their timeout.
    kind: KindName
    name: Label  # e.g. the file's name: 1-128 characters, no control characters
    owner: Owner = ""  # default the caller; another user's name needs an administrator
    # Where the data comes from, for the virus scan's outcome (V-2): print, fax-received,
    # email-received (RX jobs), scan-to-send, fax-to-send (TX jobs).
    source: SourceName = "print"


class ReadParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    object: ObjectId  # an object's id (StoredObject.id)
    descriptor: Descriptor  # writable: the plaintext is written there


class ReadResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    size: int  # plaintext bytes written to the descriptor


class PurgeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64; see Purge


class PurgeResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    objects: int  # objects crypto-erased
    bytes: int  # their plaintext size


GET_STORE_STATUS = Method(
    name="GetStoreStatus",
    doc="Objects, bytes, the encryption and deletion in force, the key chain.",
    params=NoParams,
    result=StoreStatus,
    requires=Privilege.STORE_ADMIN,
)


LIST_OBJECTS = Method(
    name="ListObjects",
    doc="The caller's objects (an administrator's: all), oldest first.",
    params=NoParams,
    result=StoredObjects,
    requires=Privilege.STORE_USE,
)


PUT = Method(
    name="Put",
    doc="Store everything readable from a passed descriptor as a new object. Nothing\n"
    "is listed until the whole object is on disk and its key committed.",
    params=PutParams,
    result=StoredObject,
    requires=Privilege.STORE_USE,
    errors=(
        ErrorCode.STORE_IO_ERROR,
        ErrorCode.STORE_FULL,
        ErrorCode.KEYS_UNAVAILABLE,
        ErrorCode.TRANSFER_TIMEOUT,
        ErrorCode.STORE_VIRUS_FOUND,
        ErrorCode.STORE_SCAN_FAILED,
    ),
    passes_descriptor=True,
)


READ = Method(
    name="Read",
    doc="Write an object's plaintext to a passed descriptor, after the whole object\n"
    "authenticated (a modified object gives IntegrityFailure and no byte).",
    params=ReadParams,
    result=ReadResult,
    requires=Privilege.STORE_USE,
    errors=(
        ErrorCode.STORE_OBJECT_NOT_FOUND,
        ErrorCode.STORE_INTEGRITY,
        ErrorCode.STORE_IO_ERROR,
        ErrorCode.KEYS_UNAVAILABLE,
        ErrorCode.TRANSFER_TIMEOUT,
    ),
    passes_descriptor=True,
)


MARK_PRINTED = Method(
    name="MarkPrinted",
    doc="A secure-print or ID & Print job came out of the printer: it is deleted at once\n"
    "(S-1). Only secure-print and id-print objects; owner rules apply.",
    params=ObjectParams,
    result=StoredObject,
    requires=Privilege.STORE_USE,
    errors=(ErrorCode.STORE_OBJECT_NOT_FOUND,),
)


DELETE_OBJECT = Method(
    name="DeleteObject",
    doc="Crypto-erase one of the caller's objects (an administrator: any).",
    params=ObjectParams,
    result=StoredObject,
    requires=Privilege.STORE_USE,
    errors=(ErrorCode.STORE_OBJECT_NOT_FOUND,),
)


PURGE = Method(
    name="Purge",
    doc="Crypto-erase every object, then overwrite the ciphertext (HDD). A\n"
    "logged-in caller gives their password again.",
    params=PurgeParams,
    result=PurgeResult,
    requires=Privilege.STORE_ADMIN,
    errors=(ErrorCode.AUTHENTICATION_FAILED, ErrorCode.ACCOUNT_LOCKED),
    sensitive=True,
)


STORE = Interface(
    name="io.mfpsecd.Store",
    module=__name__,
    doc=(
        "The encrypted job store: every object under its own AES-256 key, sealed under\n"
        "the master key; a delete destroys the key (crypto-erase) and overwrites the\n"
        "ciphertext on an HDD."
    ),
    methods=(
        GET_STORE_STATUS,
        LIST_OBJECTS,
        PUT,
        READ,
        MARK_PRINTED,
        DELETE_OBJECT,
        PURGE,
    ),
)
