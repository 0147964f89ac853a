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
KindName = Annotated[
    str, msgspec.Meta(pattern=r"^(spool|box|secure-print|encrypted-pdf|id-print)\Z")
]


class StoreStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    objects: int
    bytes: int  # plaintext
    sealed_bytes: int  # on disk
    by_kind: dict[str, int]  # "spool", "box", "secure-print", "encrypted-pdf", "id-print"
    encryption: str  # the construction, e.g. "AES-256-GCM, 64 KiB segments, a key per object"
    key_chain: str  # "ready", "locked", ...: objects can be stored and read only when ready
    medium: str  # the disk holding the store (board profile): hdd, ssd, ...
    delete_method: str  # what a delete does on this medium
    directory: str
    box_retention_days: int  # 0: kept until deleted
    secure_print_timeout_hours: int
    encrypted_pdf_retention_days: int = 1  # 0: kept until deleted
    id_print_timeout_hours: int = 24


class StoredObject(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    owner: str
    job: str
    kind: str
    name: str
    size: int
    sealed_size: int
    created_at: str
    expires_at: str  # "" when only an explicit delete removes it


class StoredObjects(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    objects: list[StoredObject]


class ObjectParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    object: ObjectId


class PutParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    descriptor: Descriptor  # readable: a file or a pipe; read to its end
    job: Label
    kind: KindName
    name: Label
    owner: Owner = ""  # default the caller; another user's name needs an administrator


class ReadParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    object: ObjectId
    descriptor: Descriptor  # writable: the plaintext is written there


class ReadResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    size: int


class PurgeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    password: ReauthPassword = msgspec.field(default_factory=bytearray)  # base64; see Purge


class PurgeResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    objects: int
    bytes: int


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
