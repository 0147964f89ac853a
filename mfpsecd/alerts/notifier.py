"""Notifications (A-5, A-6, L-4): audit events that matter are sent to the administrator,
by e-mail (SMTP with STARTTLS) and SNMP traps (snmp_trap.py, an optional part), without
turning an attack into a mail flood.

A rule matches event types (and optionally only failures) and fires when `threshold`
matching records arrive within `window_s`. Each rule then sends at most one notification
per `min_interval_s`; what arrives meanwhile is counted and summarised in the next one
("and 998 more since ..."), so a burst of a thousand events costs a handful of mails.
Records reach the notifier after they are durable; a slow or absent mail server never
slows down auditing (the queue is bounded and drops the oldest on overflow, counting it).
What a rule fires is kept in the alert outbox (services.alert_outbox) until each channel
took it, retried with a growing delay: an outage, a restart, or a boot-time failure that
happened before the network was up sends it late, never loses it.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from mfpsecd.alerts.channels import AgentxChannel, MailFailed, MailSettings, SnmpSettings
from mfpsecd.alerts.outbox import Alert, AlertOutbox
from mfpsecd.alerts.rules import Rule, matches
from mfpsecd.alerts.smi import DOCUMENTATION_PEN
from mfpsecd.audit.log_format import Record
from mfpsecd.audit.session_failures import SessionFailures, describe
from mfpsecd.base.clock import Clock
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.health import HealthRegistry, HealthState
from mfpsecd.base.secret import SecretBytes

log = structlog.get_logger("mfpsecd.notify")
QUEUE = 10000


# A secret by name from the secret store (SNMP keys and communities are secrets).
SecretSource = Callable[[str], Awaitable[SecretBytes]]


PER_OBJECT_KEYS = 4096


@dataclass
class _RuleState:
    recent: collections.deque[float] = field(default_factory=collections.deque)
    last_sent: float | None = None
    suppressed: int = 0
    first_suppressed: str = ""


RETRY_FIRST_S = 10.0  # after a failed delivery; doubling up to RETRY_MAX_S
RETRY_MAX_S = 600.0
EXPIRE_S = 72 * 3600.0  # an alert no channel took in three days is dropped, audited
NEEDS_CREDENTIALS = "needs the secret store (the daemon sends it)"
NEEDS_DAEMON = "needs the daemon's AgentX session (the daemon sends it)"
NO_SESSION = "waits for the AgentX session with snmpd"


class Notifier:
    def __init__(
        self,
        rules: list[Rule],
        mail: MailSettings | None,
        clock: Clock,
        health: HealthRegistry,
        *,
        device: str,
        outbox: AlertOutbox,
        snmp: SnmpSettings | None = None,
        agentx: AgentxChannel | None = None,
        enterprise: int = DOCUMENTATION_PEN,
        secrets: SecretSource | None = None,
        failures: SessionFailures | None = None,
        expire_s: float = EXPIRE_S,
    ) -> None:
        self._rules = rules
        self._failures = failures
        self._expire_s = expire_s
        self._mail = mail
        self._snmp = snmp
        self._agentx = agentx
        self._enterprise = enterprise
        self._secrets = secrets
        self._clock = clock
        self._health = health
        self._device = device
        self._outbox = outbox
        self._queue: collections.deque[Record] = collections.deque(maxlen=QUEUE)
        self._wake = asyncio.Event()
        self._state: dict[tuple[str, str], _RuleState] = {}
        self.sent = 0
        self.traps = 0
        self.dropped = 0
        self._poked = False

    @property
    def backlog(self) -> int:
        """Records waiting to be matched against the rules."""
        return len(self._queue)

    @property
    def channels(self) -> frozenset[str]:
        """The configured channels: every alert is owed to each of them."""
        return frozenset(
            name
            for name, on in (("mail", self._mail), ("snmp", self._snmp), ("agentx", self._agentx))
            if on is not None
        )

    def _unusable(self, channel: str) -> str:
        """Why this process cannot send on channel ("" if it can): without the secret
        store (the boot unit's safe state), only mail without SMTP AUTH goes out; only
        the daemon has an AgentX session, and only while snmpd is there."""
        if channel == "agentx":
            agentx = self._agentx
            if agentx is None or agentx.send is None:
                return NEEDS_DAEMON
            return "" if agentx.ready() else NO_SESSION
        if self._secrets is not None:
            return ""
        if channel == "snmp" or (self._mail is not None and self._mail.username):
            return NEEDS_CREDENTIALS
        return ""

    def poke(self) -> None:
        """A channel that was not usable may be now (the AgentX session opened): try
        what waits in the outbox."""
        self._poked = True
        self._wake.set()

    def offer(self, records: list[Record]) -> None:
        """Called by the auditor after each durable batch; never blocks."""
        for r in records:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(r)
        self._wake.set()

    async def queue(self, records: list[Record]) -> int:
        """Match records against the rules and keep what fires in the outbox, without
        sending (the boot unit, before the network): how many alerts were kept."""
        kept = 0
        for record in records:
            for rule in self._rules:
                if self._fires(rule, record):
                    await self._keep(rule, record)
                    kept += 1
        return kept

    async def run(self) -> None:
        """Supervised task. Starts with what an earlier process left in the outbox."""
        backoff: float | None = None
        retry_at: float | None = None  # monotonic: the next try of a failed delivery
        owed = True  # the outbox is read only when a rule fired or a retry is due
        self._wake.set()
        while True:
            await self._wait(
                None if retry_at is None else max(0.0, retry_at - self._clock.monotonic())
            )
            self._wake.clear()
            owed |= self._poked
            self._poked = False
            while self._queue:
                owed |= bool(await self.queue([self._queue.popleft()]))
            due = retry_at is not None and self._clock.monotonic() >= retry_at
            if not (owed or due):
                continue
            owed = False
            if await self.deliver():
                backoff = RETRY_FIRST_S if backoff is None else min(RETRY_MAX_S, backoff * 2)
                retry_at = self._clock.monotonic() + backoff
            else:
                backoff = retry_at = None

    async def _wait(self, seconds: float | None) -> None:
        """Until records are offered, or `seconds` have passed."""
        if seconds is None:
            await self._wake.wait()
            return
        waits = {
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._clock.sleep(seconds)),
        }
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def deliver(self) -> int:
        """Each alert in the outbox to every channel still owed it: how many alerts a
        channel failed to take (worth another try). An alert owed only to a channel this
        process cannot use stays in the outbox for one that can, and is not counted."""
        failed = 0
        for alert in await self._outbox.pending():
            if gone := alert.channels - self.channels:
                await self._outbox.forget(alert, gone)
            if self._expired(alert):
                await self._outbox.forget(alert, alert.channels)
                log.error(
                    "notify_expired",
                    rule=alert.rule,
                    seq=alert.record.seq,
                    attempts=alert.attempts,
                    last_error=alert.last_error,
                )
                if self._failures is not None:
                    for channel in sorted(alert.channels & self.channels):
                        self._failures.report(
                            channel,
                            self._where(channel),
                            f"alert {alert.rule} expired undelivered after "
                            f"{alert.attempts} attempt(s)",
                        )
                continue
            errors, unusable = [], []
            for channel in sorted(alert.channels & self.channels):
                if why := self._unusable(channel):
                    unusable.append(f"{channel}: {why}")
                elif error := await self._send(channel, alert):
                    errors.append(f"{channel}: {error}")
                else:
                    await self._outbox.delivered(alert, channel)
            if errors or unusable:
                await self._outbox.failed(alert, "; ".join(errors + unusable))
            failed += bool(errors)
        if failed:
            log.warning("notify_waiting", alerts=failed)
        return failed

    def _expired(self, alert: Alert) -> bool:
        try:
            made = dt.datetime.fromisoformat(alert.record.time.replace("Z", "+00:00"))
        except ValueError:
            return False
        return (self._clock.now() - made).total_seconds() > self._expire_s

    def _where(self, channel: str) -> str:
        mail, snmp, agentx = self._mail, self._snmp, self._agentx
        if channel == "mail" and mail:
            return f"{mail.host}:{mail.port}"
        if channel == "snmp" and snmp:
            return f"{snmp.host}:{snmp.port}"
        if channel == "agentx" and agentx:
            return f"snmpd at {agentx.master}"
        return channel

    def _rule_state(self, rule: Rule, r: Record) -> _RuleState:
        """The rate-limit state of a rule, or of a rule for one object (per_object). Keys
        come from records a device can provoke (a USB identity): the oldest are dropped
        beyond PER_OBJECT_KEYS, so a flood of identities cannot grow this without end."""
        key = (rule.name, r.object if rule.per_object else "")
        st = self._state.pop(key, None) or _RuleState()
        self._state[key] = st  # most recent last
        if len(self._state) > PER_OBJECT_KEYS:
            del self._state[next(iter(self._state))]
        return st

    def _fires(self, rule: Rule, r: Record) -> bool:
        if not matches(rule, r):
            return False
        st = self._rule_state(rule, r)
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

    async def _keep(self, rule: Rule, r: Record) -> None:
        st = self._rule_state(rule, r)
        suppressed, first = st.suppressed, st.first_suppressed
        st.last_sent = self._clock.monotonic()
        st.suppressed = 0
        st.recent.clear()
        await self._outbox.put(
            rule.name, r, suppressed=suppressed, first_suppressed=first, channels=self.channels
        )

    async def _send(self, channel: str, alert: Alert) -> str:
        """Send alert on channel: "" when it was taken, else why not."""
        where = f"{'mail' if channel == 'mail' else 'trap'} to {self._where(channel)}"
        try:
            if channel == "mail":
                await self._send_mail(alert)
                self.sent += 1
            elif channel == "agentx":
                assert self._agentx is not None and self._agentx.send is not None
                await self._agentx.send(alert)
                self.traps += 1
            else:
                await self._send_trap(alert)
                self.traps += 1
        except (MailFailed, OSError, ssl.SSLError, MfpsecError) as exc:
            name = exc.name if isinstance(exc, MailFailed) else type(exc).__name__
            log.warning(f"notify_{channel}_failed", rule=alert.rule, error=name)
            if self._failures is not None:
                self._failures.report(channel, self._where(channel), _why(exc))
            self._health.set("notify", HealthState.FAILED, f"{where} failed: {name}")
            return name
        self._health.set(
            "notify", HealthState.OK, f"{self.sent} mail(s), {self.traps} trap(s) sent"
        )
        return ""

    async def _secret(self, name: str) -> str:
        if self._secrets is None or not name:
            raise MfpsecError(
                ErrorCode.CONFIG_INVALID, key="notify", reason="credentials need the secret store"
            )
        with await self._secrets(name) as value:
            # pysnmp and aiosmtplib take str: this copy is the price of the libraries.
            return bytes(value.view()).decode()

    async def _send_trap(self, alert: Alert) -> None:
        snmp = self._snmp
        assert snmp is not None
        # The optional part, loaded once a trap is to be sent (pysnmp costs ~18 MiB).
        from mfpsecd.alerts.snmp_trap import send_trap  # noqa: PLC0415

        await send_trap(snmp, alert, self._device, self._secret, enterprise=self._enterprise)

    async def _send_mail(self, alert: Alert) -> None:
        mail = self._mail
        assert mail is not None
        password = None
        if mail.username:
            if not mail.starttls:
                raise MfpsecError(
                    ErrorCode.CONFIG_INVALID,
                    key="notify.mail.username",
                    reason="SMTP AUTH only over STARTTLS",
                )
            password = await self._secret(mail.password_secret)
        # The SMTP client (and the email package) loaded once a mail is to be sent:
        # a device that mails nobody does not carry them.
        from mfpsecd.alerts.mail_sender import send_mail  # noqa: PLC0415

        await send_mail(mail, alert, self._device, password)


def _why(exc: BaseException) -> str:
    if isinstance(exc, MailFailed):
        return exc.why
    return describe(exc)
