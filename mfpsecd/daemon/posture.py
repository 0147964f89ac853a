"""The S-1 posture's sources, each capability's part wired to the book the System
interface serves (the composition root's view: only here do they all meet)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mfpsecd.audit.events import EventType
from mfpsecd.audit.forwarder import Forwarder
from mfpsecd.audit.log_format import DAEMON, Outcome
from mfpsecd.audit.posture import audit_forwarding
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.service import AuthService
from mfpsecd.base.clock import Clock
from mfpsecd.base.config.schema import Config, SecurityMode
from mfpsecd.base.posture import PostureId, PostureItem, PostureState
from mfpsecd.base.state import StateStore
from mfpsecd.firmware.posture import firmware_verification
from mfpsecd.firmware.service import FirmwareService
from mfpsecd.ipfilter.posture import ip_filter
from mfpsecd.ipfilter.service import NetfilterService
from mfpsecd.keys.backup_schedule import BackupScheduler
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.posture import backup_schedule, tpm
from mfpsecd.scan.posture import virus_scan
from mfpsecd.scan.service import VirusScan
from mfpsecd.store.posture import STORE_ITEMS, posture_source
from mfpsecd.store.service import JobStore
from mfpsecd.system.posture import PostureBook, PostureChange
from mfpsecd.usb.posture import usb_ports
from mfpsecd.usb.service import UsbService
from mfpsecd.wipe.posture import storage_lock
from mfpsecd.wipe.service import WipeService

PROBE_EVERY_S = 600.0


def posture_book(
    state: StateStore,
    clock: Clock,
    cfg: Config,
    *,
    auditor: Auditor,
    auth: AuthService,
    store: JobStore,
    encryption: str,
    wipe: WipeService,
    chain: KeyChain,
    schedule: BackupScheduler,
    forwarders: Callable[[], Sequence[Forwarder]],
    firmware: FirmwareService | None,
    network: NetfilterService | None,
    usb: UsbService,
    scan: VirusScan | None = None,
) -> PostureBook:
    async def changed(changes: list[PostureChange]) -> None:
        for c in changes:
            # A protection lost is a failure (the "security posture" alert rule).
            await auditor.record(
                EventType.POSTURE_CHANGE,
                Outcome.FAILURE if c.item.state is PostureState.OFF else Outcome.SUCCESS,
                DAEMON,
                c.item.id.value,
                state=c.item.state.value,
                was=c.was.value,
                setting=c.item.setting,
                detail=c.item.detail,
            )

    book = PostureBook(state, clock, changed)
    book.add_source([PostureId.ADMIN_PASSWORD], auth.posture)
    book.add_source(STORE_ITEMS, posture_source(store, encryption))

    probed: list[tuple[float, PostureItem]] = []

    async def lock() -> list[PostureItem]:
        # The drives are asked at most every PROBE_EVERY_S: the watch reads the posture
        # every minute, and an Identify per drive per minute is more than it is worth.
        now = clock.monotonic()
        if not probed or now - probed[0][0] > PROBE_EVERY_S:
            probed[:] = [(now, storage_lock(await wipe.disk_facts()))]
        return [probed[0][1]]

    book.add_source([PostureId.STORAGE_LOCK_PASSWORD], lock)

    async def keys() -> list[PostureItem]:
        return [tpm(await chain.facts())]

    book.add_source([PostureId.TPM], keys)

    async def backups() -> list[PostureItem]:
        return [backup_schedule(schedule.schedule)]

    book.add_source([PostureId.BACKUP_SCHEDULE], backups)

    async def forwarding() -> list[PostureItem]:
        return [audit_forwarding([f.status for f in forwarders()])]

    book.add_source([PostureId.AUDIT_FORWARDING], forwarding)
    _add_protections(book, cfg, firmware, network, usb)

    async def scanning() -> list[PostureItem]:
        return [virus_scan(scan)]

    book.add_source([PostureId.VIRUS_SCAN], scanning)
    return book


def _add_protections(
    book: PostureBook,
    cfg: Config,
    firmware: FirmwareService | None,
    network: NetfilterService | None,
    usb: UsbService,
) -> None:
    """The device protections' items: the IP filter, firmware verification, USB ports."""
    if network is None:
        _absent(book, PostureId.IP_FILTER, "this board profile lists no network interfaces")
    else:
        net = network

        async def filtering() -> list[PostureItem]:
            return [ip_filter(await net.view())]

        book.add_source([PostureId.IP_FILTER], filtering)
    if firmware is None:
        _absent(book, PostureId.FIRMWARE_VERIFICATION, "this board profile has no [firmware]")
    else:
        fw, enhanced = firmware, cfg.security.mode is SecurityMode.ENHANCED

        async def verification() -> list[PostureItem]:
            return [firmware_verification(enhanced, fw.boot_record())]

        book.add_source([PostureId.FIRMWARE_VERIFICATION], verification)

    async def ports() -> list[PostureItem]:
        return [usb_ports(await usb.view())]

    book.add_source([PostureId.USB_PORTS], ports)


def _absent(book: PostureBook, item: PostureId, why: str) -> None:
    async def absent() -> list[PostureItem]:
        return [PostureItem(item, PostureState.NOT_APPLICABLE, "", why)]

    book.add_source([item], absent)
