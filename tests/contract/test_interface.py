"""The interface is declared once; everything else must agree with the declarations."""

from __future__ import annotations

from pathlib import Path

import pytest
import varlink

from mfpsecd.audit.backends.audit_file import AuditFile
from mfpsecd.audit.service import Auditor
from mfpsecd.auth.api import SessionPolicy
from mfpsecd.auth.password_hasher import DEFAULT_COST, PasswordHasher
from mfpsecd.auth.service import AuthService
from mfpsecd.auth.sessions import SessionTable
from mfpsecd.auth.user_store import UserStore
from mfpsecd.base.admission import AdmissionRules
from mfpsecd.base.config.schema import Config, MediumKind, UsbSection
from mfpsecd.base.errors import COMMON_ERRORS, ErrorCode
from mfpsecd.base.health import HealthRegistry
from mfpsecd.base.paths import Paths
from mfpsecd.base.sqlite_state import SqliteState
from mfpsecd.daemon import interfaces
from mfpsecd.daemon.handlers import DataServices, KeyServices, build_handlers
from mfpsecd.firmware.backends.native_hasher import NativeTreeHasher
from mfpsecd.firmware.service import FirmwareService, FirmwareSettings
from mfpsecd.keys.backends.native_crypto import NativeKeyCrypto
from mfpsecd.keys.backends.soft_keys import SoftwareKeys
from mfpsecd.keys.backends.usb_targets import UdevBackupTargets
from mfpsecd.keys.chain import KeyChain
from mfpsecd.keys.identity import DeviceIdentity
from mfpsecd.keys.secrets import SecretStore
from mfpsecd.keys.wiring import make_backup_scheduler
from mfpsecd.monitoring.ports import Commit
from mfpsecd.monitoring.service import MonitoringService
from mfpsecd.remote.model.sessions import PanelState, RemotePolicy
from mfpsecd.remote.service import PanelHooks, RemoteService
from mfpsecd.store.backends.native_objects import NativeObjectCipher
from mfpsecd.store.service import JobStore
from mfpsecd.system.events import EventFeed
from mfpsecd.system.handlers import SecurityViews
from mfpsecd.system.model.security_level import Hardening
from mfpsecd.system.ports import DeviceFacts
from mfpsecd.system.posture import PostureBook
from mfpsecd.system.report import PostureReporter
from mfpsecd.system.status import BoardInfo, StatusService
from mfpsecd.usb.backends.sysfs_usb import SysfsUsbBus
from mfpsecd.usb.service import UsbService
from mfpsecd.varlink import idl
from mfpsecd.varlink.fd_channel import FdChannel
from mfpsecd.varlink.schema import carries_secret
from mfpsecd.wipe.backends.disks import SysfsDiskInventory
from mfpsecd.wipe.backends.native_overwrite import NativeOverwriter
from mfpsecd.wipe.certificates import DeviceName
from mfpsecd.wipe.service import WipeService
from tests.support.fakeclock import FakeClock

_NOWHERE = Paths(*(Path("/nonexistent"),) * 4)


def _handlers() -> dict[str, object]:
    clock = FakeClock()
    health = HealthRegistry(clock)
    # Constructed only (nothing is opened): the table is what is being checked.
    store = SqliteState(Path("/nonexistent/state.sqlite3"))
    chain = KeyChain(store, SoftwareKeys(Path("/nonexistent")), NativeKeyCrypto(), clock, health)
    secrets = SecretStore(store, chain, clock)
    targets = UdevBackupTargets(clock, [])
    auditor = Auditor(AuditFile(Path("/nonexistent/audit.log")), clock, health)
    keys = KeyServices(
        chain,
        secrets,
        DeviceIdentity(chain, clock, "b"),
        targets,
        auditor,
        make_backup_scheduler(
            chain, secrets, store, clock, targets=targets, health=health, auditor=auditor
        ),
    )
    hasher = PasswordHasher(NativeKeyCrypto(), DEFAULT_COST)
    auth = AuthService(
        UserStore(store),
        keys.secrets,
        hasher,
        sessions=SessionTable(clock, SessionPolicy()),
        auditor=keys.auditor,
        clock=clock,
    )

    async def no_signer(digest: bytes) -> None:
        return None

    wipe = WipeService(
        store,
        SysfsDiskInventory([], _NOWHERE, simulated=False),
        NativeOverwriter(),
        keys.auditor,
        clock,
        signer=no_signer,
        identities=chain.identities,
        device=DeviceName("b", "b", "b"),
        tool="t",
    )
    jobs = JobStore(
        store,
        chain,
        NativeObjectCipher(),
        keys.auditor,
        clock,
        crypto=NativeKeyCrypto(),
        job_data=wipe.job_data,
        directory=Path("/nonexistent/store"),
        medium=MediumKind.HDD,
    )
    firmware = FirmwareService(
        FirmwareSettings(
            model="m",
            roots=(),
            slots_dir=Path("/nonexistent/fw"),
            run_dir=Path("/nonexistent/run"),
            counter_index=0x01000100,
            pcr=14,
            boot_tries=3,
            max_bundle_bytes=1 << 30,
        ),
        tpm=SoftwareKeys(Path("/nonexistent")),
        hasher=NativeTreeHasher(),
        clock=clock,
        auditor=keys.auditor,
        state=store,
    )
    status = StatusService(clock, health, BoardInfo("b", "k"))
    book = PostureBook(store, clock)
    return dict(
        build_handlers(
            status,
            keys,
            auth,
            DataServices(
                wipe,
                jobs,
                "t",
                FdChannel(AdmissionRules(0, frozenset(), frozenset()), clock),
                firmware,
                usb=UsbService(
                    SysfsUsbBus(Path("/nonexistent"), clock),
                    store,
                    auditor=keys.auditor,
                    clock=clock,
                    health=health,
                    board_ports={},
                    configured=UsbSection(),
                ),
                remote=RemoteService(
                    store,
                    auditor=keys.auditor,
                    clock=clock,
                    policy=RemotePolicy(),
                    panel=PanelHooks(PanelState, lambda: 0),
                ),
                monitoring=MonitoringService(
                    Config(),
                    store,
                    auditor=keys.auditor,
                    clock=clock,
                    reporting=_NotRunning(),
                    stored_secrets=_nothing_stored,
                    stored=None,
                ),
            ),
            SecurityViews(
                book,
                EventFeed(keys.auditor, lambda r: "", clock),
                keys.auditor,
                clock,
                PostureReporter(
                    book,
                    status,
                    clock,
                    signer=no_signer,
                    identities=chain.identities,
                    hardening=_no_hardening,
                    device=lambda: DeviceFacts("m", "s", "b", "", 32473),
                ),
            ),
        )
    )


class _NotRunning:
    """The reporting parts of a daemon that is not running: the handler table only."""

    running = False

    async def prepare(self, cfg: Config) -> Commit:
        raise AssertionError("not called by these tests")


async def _no_hardening() -> Hardening:
    return Hardening(False, "", False, 0, "")


async def _nothing_stored() -> frozenset[str]:
    return frozenset()


def test_every_declared_method_has_a_handler_and_vice_versa() -> None:
    declared = {name for name, _ in interfaces.all_methods()}
    assert set(_handlers()) == declared


def test_committed_idl_matches_declarations() -> None:
    for interface in interfaces.INTERFACES:
        if interface.name.startswith("org.varlink."):
            continue
        path = idl.idl_path(interface)
        assert path.read_text() == idl.generate(interface), (
            f"{path.name} drifted from its declaration: run `make idl` and commit"
        )


def test_generated_idl_parses_with_an_independent_parser() -> None:
    for interface in interfaces.INTERFACES:
        parsed = varlink.Interface(idl.generate(interface))
        assert parsed.name == interface.name
        members: dict[str, set[str]] = {type(m).__name__: set() for m in parsed.members.values()}
        for name, m in parsed.members.items():
            members[type(m).__name__].add(name)
        assert members["_Method"] == {m.name for m in interface.methods}
        assert members.get("_Error", set()) == {e.short_name for e in interface.errors}


def test_declared_method_errors_are_served_by_some_interface() -> None:
    served = {e for i in interfaces.INTERFACES for e in i.errors}
    for name, method in interfaces.all_methods():
        for code in (*method.errors, *COMMON_ERRORS):
            if code.interface.startswith("io.mfpsecd.System") or code in served:
                continue
            assert code.interface == "org.varlink.service", (name, code)


def test_error_codes_round_trip_and_are_unique() -> None:
    names = [c.wire_name for c in ErrorCode]
    assert len(names) == len(set(names))
    for code in ErrorCode:
        assert ErrorCode.from_wire(code.wire_name) is code
        assert code.exit_status == 1 or 64 <= code.exit_status <= 78
        assert code.short_name[0].isupper()
    assert ErrorCode.from_wire("com.example.Unknown") is None


def test_wire_names_are_frozen() -> None:
    # Renaming a wire name breaks deployed panels and scripts: add a member instead.
    assert {c.name: c.wire_name for c in ErrorCode}.items() >= {
        "PERMISSION_DENIED": "org.varlink.service.PermissionDenied",
        "INVALID_PARAMETER": "org.varlink.service.InvalidParameter",
        "INTERNAL": "io.mfpsecd.System.Internal",
        "DAEMON_UNREACHABLE": "io.mfpsecd.Client.DaemonUnreachable",
        "CONFIG_INVALID": "io.mfpsecd.System.ConfigInvalid",
    }.items()


def _string_patterns(t: object, seen: set[int]) -> list[str]:
    """Every regex pattern reachable from a msgspec type."""
    import msgspec.inspect as mi

    if id(t) in seen:
        return []
    seen.add(id(t))
    out: list[str] = []
    if isinstance(t, mi.StrType) and t.pattern is not None:
        out.append(t.pattern)
    for attr in ("item_type", "key_type", "value_type"):
        if hasattr(t, attr):
            out += _string_patterns(getattr(t, attr), seen)
    for member in getattr(t, "types", ()):
        out += _string_patterns(member, seen)
    for f in getattr(t, "fields", ()):
        out += _string_patterns(f.type, seen)
    return out


def test_every_declared_pattern_matches_to_the_very_end() -> None:
    """Python's `$` also matches before a trailing newline, so `^[a-z]+$` admitted
    "alice\\n" as a user name: every pattern of the wire types ends with \\Z."""
    import msgspec.inspect as mi

    patterns: set[str] = set()
    for _, m in interfaces.all_methods():
        for t in (m.params, m.result):
            patterns.update(_string_patterns(mi.type_info(t), set()))
    assert patterns, "no pattern found: the walk is broken"
    assert sorted(p for p in patterns if not p.endswith("\\Z")) == []


def test_a_trailing_newline_is_refused() -> None:
    import msgspec

    from mfpsecd.auth.api import UserName
    from mfpsecd.store.api import Label

    for t in (UserName, Label):
        try:
            msgspec.json.decode(b'"alice\\n"', type=t)
        except msgspec.ValidationError:
            continue
        raise AssertionError(f"{t} admits a trailing newline")


def test_every_method_with_a_descriptor_releases_it() -> None:
    """A method whose parameters name a side-channel descriptor declares it, so that the
    server releases the descriptor when a call ends however it ends."""
    for name, m in interfaces.all_methods():
        has = "descriptor" in m.params.__struct_fields__
        assert m.passes_descriptor == has, name


def test_a_method_is_sensitive_exactly_when_it_carries_a_secret() -> None:
    """`sensitive` makes the client wipe what it sent and the server wipe what it got and
    never log it: a method whose params or result can hold a secret (a bytearray, or a
    field marked SECRET, like a session token) must say so, and no other may."""
    wrong = [
        (name, m.sensitive)
        for name, m in interfaces.all_methods()
        if m.sensitive != (carries_secret(m.params) or carries_secret(m.result))
    ]
    assert wrong == []


@pytest.mark.sfr("FMT_SMF.1")
@pytest.mark.spec("A-2", "F-3", "L-3", "N-2", "U-4")
def test_the_idl_says_what_a_client_in_another_language_needs() -> None:
    """Binary inputs say they are base64, inputs with a default are optional, each method
    names its privilege and whether it streams, and fields carry their comments."""
    text = idl.generate(interfaces.BY_NAME["io.mfpsecd.Auth"])
    login = text[text.index("method Login(") :]
    login = login[: login.index(") -> (")]
    assert "  # base64; printable ASCII" in login and "\n  password: string," in login
    assert "  otp: ?string," in login  # it has a default: absent or null means ""
    assert "  user: string," in login  # required
    wipe = idl.generate(interfaces.BY_NAME["io.mfpsecd.Wipe"])
    assert '# Privilege: sanitize.\n# Streams: call with "more": true' in wipe
    assert "# After a lost connection, call again with the same parameters." in wipe
    assert "  # bytes of the current step done\n  position: int," in wipe
    for interface in interfaces.INTERFACES:
        generated = idl.generate(interface)
        for m in interface.methods:
            head = generated[: generated.index(f"method {m.name}(")]
            assert (
                head.rstrip()
                .splitlines()[-1]
                .startswith(
                    ("# Privilege:", "# Sensitive:", "# Streams:", "# Takes", "# After", "# A lost")
                )
            ), m


_WIRE_NAMES = Path(__file__).with_name("wire_error_names.txt")


def test_wire_error_names_are_append_only() -> None:
    """Deployed panels and scripts match on error names: every name in the snapshot still
    exists, under the same member; a new member must be appended to the snapshot."""
    snapshot = [
        tuple(line.split())
        for line in _WIRE_NAMES.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    current = [(c.name, c.wire_name) for c in ErrorCode]
    assert [entry for entry in snapshot if entry not in current] == []
    missing = [entry for entry in current if entry not in snapshot]
    assert missing == [], f"append these lines to {_WIRE_NAMES.name}: {missing}"
