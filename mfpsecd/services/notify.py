"""Notifications (A-5, A-6, L-4): audit events that matter are sent to the administrator,
by e-mail (SMTP with STARTTLS; SNMP traps are the other channel, to come), without
turning an attack into a mail flood.

A rule matches event types (and optionally only failures) and fires when `threshold`
matching records arrive within `window_s`. Each rule then sends at most one notification
per `min_interval_s`; what arrives meanwhile is counted and summarised in the next one
("and 998 more since ..."), so a burst of a thousand events costs a handful of mails.
Records reach the notifier after they are durable; a slow or absent mail server never
slows down auditing (the queue is bounded and drops the oldest on overflow, counting it).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib
import structlog
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    NotificationType,
    ObjectIdentity,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    send_notification,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto.rfc1902 import Integer32, OctetString

from mfpsecd.api.auditlog import EventType, Outcome, Record
from mfpsecd.api.types import HealthState
from mfpsecd.errors import ErrorCode, MfpsecError
from mfpsecd.ports import Clock
from mfpsecd.secret import SecretBytes
from mfpsecd.services.health import HealthRegistry

log = structlog.get_logger("mfpsecd.notify")
QUEUE = 10000


@dataclass(frozen=True)
class Rule:
    name: str
    events: frozenset[EventType]
    failures_only: bool = False
    threshold: int = 1
    window_s: float = 60.0
    min_interval_s: float = 300.0
    phase: str = ""  # only records whose details.phase is this ("" = any)


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    ca_file: str | None = None
    timeout_s: float = 30.0
    username: str = ""  # SMTP AUTH (only over STARTTLS); the password is a stored secret
    password_secret: str = ""


@dataclass(frozen=True)
class SnmpSettings:
    host: str
    port: int = 162
    version: str = "v3"  # "v3" (authPriv: SHA + AES-128) or "v2c"
    user: str = ""  # v3
    engine_id: str = ""  # v3: hex; the receiver's createUser -e names it
    auth_secret: str = ""  # v3: secret-store names of the keys
    priv_secret: str = ""
    community_secret: str = ""  # v2c


# Enterprise 32473 is the documentation PEN (RFC 5612); a vendor build uses its own.
ENTERPRISE = "1.3.6.1.4.1.32473.1"
TRAP_OID = ENTERPRISE + ".0.1"  # mfpsecdSecurityEvent
VAR = {"type": 1, "outcome": 2, "subject": 3, "object": 4, "seq": 5, "device": 6,
       "rule": 7, "suppressed": 8, "time": 9}

# A secret by name from the secret store (SNMP keys and communities are secrets).
SecretSource = Callable[[str], Awaitable[SecretBytes]]


@dataclass
class _RuleState:
    recent: collections.deque[float] = field(default_factory=collections.deque)
    last_sent: float | None = None
    suppressed: int = 0
    first_suppressed: str = ""


class Notifier:
    def __init__(self, rules: list[Rule], mail: MailSettings | None, clock: Clock,
                 health: HealthRegistry, *, device: str, snmp: SnmpSettings | None = None,
                 secrets: SecretSource | None = None) -> None:
        self._rules = rules
        self._mail = mail
        self._snmp = snmp
        self._secrets = secrets
        self._clock = clock
        self._health = health
        self._device = device
        self._queue: collections.deque[Record] = collections.deque(maxlen=QUEUE)
        self._wake = asyncio.Event()
        self._state = {r.name: _RuleState() for r in rules}
        self.sent = 0
        self.traps = 0
        self.dropped = 0

    @property
    def backlog(self) -> int:
        """Records waiting to be matched against the rules."""
        return len(self._queue)

    def offer(self, records: list[Record]) -> None:
        """Called by the auditor after each durable batch; never blocks."""
        for r in records:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(r)
        self._wake.set()

    async def run(self) -> None:
        """Supervised task."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                record = self._queue.popleft()
                for rule in self._rules:
                    if self._fires(rule, record):
                        await self._notify(rule, record)

    def _fires(self, rule: Rule, r: Record) -> bool:
        if r.type not in rule.events or (rule.failures_only and r.outcome is not Outcome.FAILURE):
            return False
        if rule.phase and r.details.get("phase") != rule.phase:
            return False
        st = self._state[rule.name]
        now = self._clock.monotonic()
        st.recent.append(now)
        while st.recent and now - st.recent[0] > rule.window_s:
            st.recent.popleft()
        if len(st.recent) < rule.threshold:
            return False
        if st.last_sent is not None and now - st.last_sent < rule.min_interval_s:
            if not st.suppressed:
                st.first_suppressed = r.time
            st.suppressed += 1
            return False
        return True

    async def _notify(self, rule: Rule, r: Record) -> None:
        st = self._state[rule.name]
        suppressed = st.suppressed
        more = ""
        if suppressed:
            more = (f"\n\n{suppressed} more matching event(s) since {st.first_suppressed} "
                    "were not notified one by one (rate limit).")
        st.last_sent = self._clock.monotonic()
        st.suppressed = 0
        st.recent.clear()
        if self._mail is not None:
            try:
                await self._send_mail(rule, r, more)
                self.sent += 1
                self._health.set("notify", HealthState.OK, f"{self.sent} sent")
            except (aiosmtplib.SMTPException, OSError, ssl.SSLError, MfpsecError) as exc:
                log.warning("notify_mail_failed", rule=rule.name, error=type(exc).__name__)
                self._health.set("notify", HealthState.FAILED,
                                 f"mail to {self._mail.host}:{self._mail.port} failed: "
                                 f"{type(exc).__name__}")
        if self._snmp is not None:
            try:
                await self._send_trap(rule, r, suppressed)
                self.traps += 1
            except (MfpsecError, OSError) as exc:
                log.warning("notify_trap_failed", rule=rule.name, error=type(exc).__name__)
                self._health.set("notify", HealthState.FAILED,
                                 f"trap to {self._snmp.host}:{self._snmp.port} failed: "
                                 f"{type(exc).__name__}")

    async def _secret(self, name: str) -> str:
        if self._secrets is None or not name:
            raise MfpsecError(ErrorCode.CONFIG_INVALID, key="notify",
                              reason="credentials need the secret store")
        with await self._secrets(name) as value:
            # pysnmp and aiosmtplib take str: this copy is the price of the libraries.
            return bytes(value.view()).decode()

    async def _send_trap(self, rule: Rule, r: Record, suppressed: int) -> None:
        snmp = self._snmp
        assert snmp is not None
        if snmp.version == "v3":
            engine = SnmpEngine(snmpEngineID=OctetString(hexValue=snmp.engine_id))
            auth = UsmUserData(snmp.user, await self._secret(snmp.auth_secret),
                               await self._secret(snmp.priv_secret),
                               authProtocol=usmHMACSHAAuthProtocol,
                               privProtocol=usmAesCfb128Protocol)
        else:
            engine = SnmpEngine()
            # v2c only where the issue asks for it (legacy managers); v3 is the default.
            auth = CommunityData(await self._secret(snmp.community_secret),
                                 mpModel=1)  # noqa: S508
        who = r.subject.user or r.subject.origin
        if r.subject.address:
            who += f"@{r.subject.address}"
        values = {"type": r.type.value, "outcome": r.outcome.value, "subject": who,
                  "object": r.object, "device": self._device, "rule": rule.name,
                  "time": r.time}
        binds = [(ObjectIdentity(f"{ENTERPRISE}.1.{VAR[k]}"), OctetString(v.encode()))
                 for k, v in values.items()]
        binds += [(ObjectIdentity(f"{ENTERPRISE}.1.{VAR['seq']}"), Integer32(r.seq)),
                  (ObjectIdentity(f"{ENTERPRISE}.1.{VAR['suppressed']}"), Integer32(suppressed))]
        try:
            target = await UdpTransportTarget.create((snmp.host, snmp.port))
            error, *_ = await send_notification(
                engine, auth, target, ContextData(), "trap",
                NotificationType(ObjectIdentity(TRAP_OID)).add_varbinds(*binds))
        finally:
            engine.close_dispatcher()
        if error:
            raise OSError(str(error))

    async def _send_mail(self, rule: Rule, r: Record, more: str) -> None:
        mail = self._mail
        assert mail is not None
        msg = EmailMessage()
        msg["From"] = mail.sender
        msg["To"] = ", ".join(mail.recipients)
        msg["Subject"] = (f"[mfpsecd {self._device}] {rule.name}: {r.type.value} "
                          f"{r.outcome.value}")
        who = r.subject.user or r.subject.origin
        if r.subject.address:
            who += f" from {r.subject.address}"
        details = "\n".join(f"  {k}: {v}" for k, v in sorted(r.details.items()))
        msg.set_content(f"Device: {self._device}\nTime: {r.time}\nEvent: {r.type.value} "
                        f"({r.outcome.value})\nWho: {who}\nObject: {r.object}\n"
                        f"Audit record: {r.seq}\nDetails:\n{details}{more}\n")
        ctx = ssl.create_default_context(cafile=mail.ca_file) if mail.starttls else None
        username = password = None
        if mail.username:
            if not mail.starttls:
                raise MfpsecError(ErrorCode.CONFIG_INVALID, key="notify.mail.username",
                                  reason="SMTP AUTH only over STARTTLS")
            username, password = mail.username, await self._secret(mail.password_secret)
        await aiosmtplib.send(msg, hostname=mail.host, port=mail.port,
                              start_tls=mail.starttls, tls_context=ctx,
                              timeout=mail.timeout_s, username=username, password=password)


DEFAULT_RULES = [
    Rule("account locked", frozenset({EventType.AUTH_LOCKOUT})),
    Rule("request flood", frozenset({EventType.AUTH_FLOOD})),
    Rule("audit log full", frozenset({EventType.AUDIT_FULL})),
    Rule("clock changed", frozenset({EventType.TIME_CHANGE})),
    Rule("keys", frozenset({EventType.KEYS_DESTROY, EventType.KEYS_RESTORE})),
    Rule("firmware", frozenset({EventType.FIRMWARE_VERIFY, EventType.FIRMWARE_UPDATE}),
         failures_only=True),
    # A sanitization or purge that ended without its result: a device that left data, or
    # one that stopped answering (DeviceStuck). Refused starts are not mailed.
    Rule("sanitization failed", frozenset({EventType.SANITIZE}), failures_only=True,
         phase="result"),
    # The kernel's IP filter changed behind the daemon's back (services.netfilter).
    Rule("ip filter changed", frozenset({EventType.NETFILTER_CHANGE}), failures_only=True,
         phase="drift"),
]
