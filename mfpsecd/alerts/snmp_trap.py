"""The SNMP trap channel of the alerts (L-4): one notification per alert, SNMPv3
authPriv or v2c. An optional part of the product (meson option `snmp`, the `snmp`
extra): a build without it leaves this module and pysnmp out, and a configuration that
names a trap receiver is refused at start (base/optional.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mfpsecd.alerts.channels import SnmpSettings
from mfpsecd.alerts.outbox import Alert

# Enterprise 32473 is the documentation PEN (RFC 5612); a vendor build uses its own.
ENTERPRISE = "1.3.6.1.4.1.32473.1"
TRAP_OID = ENTERPRISE + ".0.1"  # mfpsecdSecurityEvent
VAR = {
    "type": 1,
    "outcome": 2,
    "subject": 3,
    "object": 4,
    "seq": 5,
    "device": 6,
    "rule": 7,
    "suppressed": 8,
    "time": 9,
}


async def send_trap(
    snmp: SnmpSettings, alert: Alert, device: str, secret: Callable[[str], Awaitable[str]]
) -> None:
    """OSError when the receiver cannot be reached or the engine reports an error."""
    # pysnmp costs ~18 MiB and 0.15 s to import: loaded once a trap is to be sent, not
    # by every daemon whether or not it has a trap receiver.
    from pysnmp.hlapi.v3arch.asyncio import (  # noqa: PLC0415
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
    from pysnmp.proto.rfc1902 import Integer32, OctetString  # noqa: PLC0415

    r, suppressed = alert.record, alert.suppressed
    if snmp.version == "v3":
        engine = SnmpEngine(snmpEngineID=OctetString(hexValue=snmp.engine_id))
        auth = UsmUserData(
            snmp.user,
            await secret(snmp.auth_secret),
            await secret(snmp.priv_secret),
            authProtocol=usmHMACSHAAuthProtocol,
            privProtocol=usmAesCfb128Protocol,
        )
    else:
        engine = SnmpEngine()
        # v2c only where the issue asks for it (legacy managers); v3 is the default.
        auth = CommunityData(await secret(snmp.community_secret), mpModel=1)  # noqa: S508
    who = r.subject.user or r.subject.origin
    if r.subject.address:
        who += f"@{r.subject.address}"
    values = {
        "type": r.type.value,
        "outcome": r.outcome.value,
        "subject": who,
        "object": r.object,
        "device": device,
        "rule": alert.rule,
        "time": r.time,
    }
    binds = [
        (ObjectIdentity(f"{ENTERPRISE}.1.{VAR[k]}"), OctetString(v.encode()))
        for k, v in values.items()
    ]
    binds += [
        (ObjectIdentity(f"{ENTERPRISE}.1.{VAR['seq']}"), Integer32(r.seq)),
        (ObjectIdentity(f"{ENTERPRISE}.1.{VAR['suppressed']}"), Integer32(suppressed)),
    ]
    try:
        target = await UdpTransportTarget.create((snmp.host, snmp.port))
        error, *_ = await send_notification(
            engine,
            auth,
            target,
            ContextData(),
            "trap",
            NotificationType(ObjectIdentity(TRAP_OID)).add_varbinds(*binds),
        )
    finally:
        engine.close_dispatcher()
    if error:
        raise OSError(str(error))
