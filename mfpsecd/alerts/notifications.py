"""Which MFPSEC-MIB notification an alert is sent as, and what it carries
(mfpsecd/snmp/MFPSEC-MIB.txt: mfpsecNotifications, mfpsecAlert). Every default rule has
its own notification; a rule an administrator configures is sent as mfpsecAlertRaised
with its name in mfpsecAlertRule. The direct trap channel and the AgentX subagent send
the same notifications. Pure."""

from __future__ import annotations

from mfpsecd.alerts.outbox import Alert
from mfpsecd.alerts.smi import (
    SNMP_TRAP_OID,
    Oid,
    SmiType,
    VarBind,
    date_and_time,
    mib_root,
    text,
)
from mfpsecd.audit.log_format import Outcome

GENERIC = "mfpsecAlertRaised"
# rule name -> (sub-identifier under mfpsecNotifications, the MIB's name); numbers are
# never reused: a rule removed keeps its number.
BY_RULE: dict[str, tuple[int, str]] = {
    "account locked": (2, "mfpsecAccountLocked"),
    "request flood": (3, "mfpsecRequestFlood"),
    "audit log full": (4, "mfpsecAuditLogFull"),
    "clock changed": (5, "mfpsecClockChanged"),
    "keys": (6, "mfpsecKeysChanged"),
    "firmware": (7, "mfpsecFirmwareFailure"),
    "sanitization failed": (8, "mfpsecSanitizationFailed"),
    "administrator recovery": (9, "mfpsecAdminRecovery"),
    "role changed": (10, "mfpsecRoleChanged"),
    "ip filter changed": (11, "mfpsecIpFilterChanged"),
    "ip filter failed": (12, "mfpsecIpFilterFailed"),
    "audit log integrity": (13, "mfpsecAuditIntegrity"),
    "stored data tampered": (14, "mfpsecStoredDataTampered"),
    "SIEM unreachable": (15, "mfpsecSiemUnreachable"),
    "USB device refused": (16, "mfpsecUsbDeviceRefused"),
    "virus detected": (17, "mfpsecVirusDetected"),
    "virus scan failed": (18, "mfpsecVirusScanFailed"),
    "panel screen reset": (19, "mfpsecPanelScreenReset"),
    "remote session": (20, "mfpsecRemoteSession"),
    "fleet manage mode": (21, "mfpsecFleetManageMode"),
    "security posture": (22, "mfpsecPostureDegraded"),
}
_GENERIC_NUMBER = 1
ALERT_OBJECTS = 7  # mfpsecAlert: { mfpsecObjects 7 }
_OUTCOME = {Outcome.SUCCESS: 1, Outcome.FAILURE: 2}


def notification_oid(enterprise: int, rule: str) -> Oid:
    number = BY_RULE.get(rule, (_GENERIC_NUMBER, GENERIC))[0]
    return (*mib_root(enterprise), 0, number)


def notification(enterprise: int, alert: Alert, device: str) -> list[VarBind]:
    """snmpTrapOID.0 and the notification's objects, in the MIB's OBJECTS order."""
    r = alert.record
    who = r.subject.user or r.subject.origin
    if r.subject.address:
        who += f"@{r.subject.address}"
    obj = (*mib_root(enterprise), 1, ALERT_OBJECTS)
    return [
        VarBind(SNMP_TRAP_OID, SmiType.OBJECT_IDENTIFIER, notification_oid(enterprise, alert.rule)),
        text((*obj, 1, 0), alert.rule),
        text((*obj, 2, 0), r.type.value),
        VarBind((*obj, 3, 0), SmiType.INTEGER, _OUTCOME[r.outcome]),
        text((*obj, 4, 0), who),
        text((*obj, 5, 0), r.object),
        VarBind((*obj, 6, 0), SmiType.GAUGE32, r.seq & 0xFFFFFFFF),
        VarBind((*obj, 7, 0), SmiType.GAUGE32, min(alert.suppressed, 0xFFFFFFFF)),
        VarBind((*obj, 8, 0), SmiType.OCTET_STRING, date_and_time(r.time)),
        text((*obj, 9, 0), device),
    ]
