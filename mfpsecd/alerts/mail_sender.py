"""The mail channel of the alerts (A-5): one message per alert to the administrators,
over SMTP with STARTTLS (and SMTP AUTH only inside it). Loaded by the notifier when the
first mail is to be sent: the SMTP client and the email package are not carried by a
daemon that mails nobody."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from mfpsecd.alerts.channels import MailFailed, MailSettings
from mfpsecd.alerts.outbox import Alert
from mfpsecd.audit.session_failures import describe
from mfpsecd.base.escape import without_controls
from mfpsecd.base.tls import client_context


def message(mail: MailSettings, alert: Alert, device: str) -> EmailMessage:
    r = alert.record
    more = ""
    if alert.suppressed:
        more = (
            f"\n\n{alert.suppressed} more matching event(s) since "
            f"{alert.first_suppressed} were not notified one by one (rate limit)."
        )
    msg = EmailMessage()
    msg["From"] = mail.sender
    msg["To"] = ", ".join(mail.recipients)
    msg["Subject"] = f"[mfpsecd {device}] {alert.rule}: {r.type.value} {r.outcome.value}"
    who = without_controls(r.subject.user or r.subject.origin)
    if r.subject.address:
        who += f" from {without_controls(r.subject.address)}"
    # Object and details carry what users and devices sent: escaped, so that a name
    # can neither forge a line of the mail nor hide one.
    details = "\n".join(f"  {k}: {without_controls(str(v))}" for k, v in sorted(r.details.items()))
    msg.set_content(
        f"Device: {device}\nTime: {r.time}\nEvent: {r.type.value} "
        f"({r.outcome.value})\nWho: {who}\nObject: {without_controls(r.object)}\n"
        f"Audit record: {r.seq}\nDetails:\n{details}{more}\n"
    )
    return msg


async def send_mail(mail: MailSettings, alert: Alert, device: str, password: str | None) -> None:
    """Raises MailFailed for what the SMTP exchange refused; OSError and ssl.SSLError
    for the connection."""
    ctx = client_context(mail.ca_file) if mail.starttls else None
    try:
        await aiosmtplib.send(
            message(mail, alert, device),
            hostname=mail.host,
            port=mail.port,
            start_tls=mail.starttls,
            tls_context=ctx,
            timeout=mail.timeout_s,
            username=mail.username or None,
            password=password,
        )
    except aiosmtplib.SMTPResponseException as exc:
        raise MailFailed(type(exc).__name__, f"SMTP {exc.code}") from exc
    except aiosmtplib.SMTPException as exc:
        raise MailFailed(type(exc).__name__, describe(exc)) from exc
