"""The job store's part of the S-1 posture: its encryption, the overwrite of a job's
temporary data, and the four deletion policies."""

from __future__ import annotations

from mfpsecd.base.posture import PostureId, PostureItem, PostureSource, PostureState
from mfpsecd.store.service import JobStore, StoreSettings
from mfpsecd.wipe.model.overwrite_plan import Medium, temporary_plan

STORE_ITEMS = (
    PostureId.STORAGE_ENCRYPTION,
    PostureId.TEMPORARY_DATA_OVERWRITE,
    PostureId.AUTO_DOCUMENT_DELETION,
    PostureId.ENCRYPTED_PDF_DELETION,
    PostureId.ID_PRINT_DELETION,
    PostureId.SECURE_DOCUMENT_DELETION,
)


def posture_source(store: JobStore, encryption: str) -> PostureSource:
    async def items() -> list[PostureItem]:
        return store_posture(
            store.settings,
            encryption=encryption,
            key_chain=store.key_chain_state,
            medium=store.medium,
            not_in_place=store.not_in_place,
            temporary_mode=store.temporary_mode,
        )

    return items


def store_posture(
    settings: StoreSettings,
    *,
    encryption: str,
    key_chain: str,
    medium: Medium,
    not_in_place: str,
    temporary_mode: int,
) -> list[PostureItem]:
    return [
        PostureItem(
            PostureId.STORAGE_ENCRYPTION,
            PostureState.ON,
            encryption,
            ""
            if key_chain == "ready"
            else f"the key chain is {key_chain}: nothing can be stored or read until it is ready",
        ),
        _temporary_data(medium, not_in_place, temporary_mode),
        _retention(PostureId.AUTO_DOCUMENT_DELETION, "box documents", settings.box_retention_s),
        _retention(
            PostureId.ENCRYPTED_PDF_DELETION, "encrypted PDFs", settings.encrypted_pdf_retention_s
        ),
        _held(PostureId.ID_PRINT_DELETION, "ID & Print jobs", settings.id_print_timeout_s),
        _held(
            PostureId.SECURE_DOCUMENT_DELETION, "secure-print jobs", settings.secure_print_timeout_s
        ),
    ]


def _temporary_data(medium: Medium, not_in_place: str, mode: int) -> PostureItem:
    plan = temporary_plan(mode, medium)
    if plan is None:
        return PostureItem(
            PostureId.TEMPORARY_DATA_OVERWRITE,
            PostureState.NOT_APPLICABLE,
            f"job data on {medium.value} (flash)",
            "an overwrite does not reach flash cells: job data is protected by the store's "
            "crypto-erase",
        )
    setting = plan.describe()  # names the mode: "Temporary data mode 2: 0x00, ..."
    if not_in_place:
        return PostureItem(
            PostureId.TEMPORARY_DATA_OVERWRITE,
            PostureState.OFF,
            setting,
            f"{not_in_place}: an overwrite in place would not reach the data's blocks, so "
            "job data is protected by crypto-erase only",
        )
    return PostureItem(PostureId.TEMPORARY_DATA_OVERWRITE, PostureState.ON, setting)


def _retention(item: PostureId, what: str, seconds: float) -> PostureItem:
    if seconds <= 0:
        return PostureItem(item, PostureState.OFF, f"{what} kept until deleted")
    return PostureItem(item, PostureState.ON, f"{what} deleted after {_span(seconds)}")


def _held(item: PostureId, what: str, seconds: float) -> PostureItem:
    return PostureItem(
        item, PostureState.ON, f"{what} deleted when printed or after {_span(seconds)}"
    )


def _span(seconds: float) -> str:
    days, hours = round(seconds) // 86400, round(seconds) / 3600
    if days and round(seconds) % 86400 == 0:
        return "1 day" if days == 1 else f"{days} days"
    return f"{hours:g} h"
