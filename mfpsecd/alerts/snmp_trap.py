"""The direct SNMP trap channel of the alerts (L-4): one MFPSEC-MIB notification per
alert straight to a manager, SNMPv3 authPriv (HMAC-SHA-2, AES) or v2c, for a device
without a net-snmp master agent (with one, traps go through it: snmp.traps). An optional
part of the product (meson option `snmp`, the `snmp` extra): a build without it leaves
this module and pysnmp out, and a configuration that names a trap receiver is refused at
start (base/optional.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mfpsecd.alerts.channels import SnmpSettings
from mfpsecd.alerts.notifications import notification
from mfpsecd.alerts.outbox import Alert
from mfpsecd.alerts.smi import SmiType, VarBind

_AUTH = {
    "sha256": "usmHMAC192SHA256AuthProtocol",
    "sha384": "usmHMAC256SHA384AuthProtocol",
    "sha512": "usmHMAC384SHA512AuthProtocol",
}
_PRIV = {
    "aes128": "usmAesCfb128Protocol",
    "aes192": "usmAesCfb192Protocol",
    "aes256": "usmAesCfb256Protocol",
}


async def send_trap(
    snmp: SnmpSettings,
    alert: Alert,
    device: str,
    secret: Callable[[str], Awaitable[str]],
    *,
    enterprise: int,
) -> None:
    """OSError when the receiver cannot be reached or the engine reports an error."""
    # pysnmp costs ~18 MiB and 0.15 s to import: loaded once a trap is to be sent, not
    # by every daemon whether or not it has a trap receiver.
    from pysnmp.hlapi.v3arch import asyncio as hlapi  # noqa: PLC0415
    from pysnmp.proto import rfc1902  # noqa: PLC0415

    if snmp.version == "v3":
        engine = hlapi.SnmpEngine(snmpEngineID=rfc1902.OctetString(hexValue=snmp.engine_id))
        auth: object = hlapi.UsmUserData(
            snmp.user,
            await secret(snmp.auth_secret),
            await secret(snmp.priv_secret),
            authProtocol=getattr(hlapi, _AUTH[snmp.auth_protocol]),
            privProtocol=getattr(hlapi, _PRIV[snmp.priv_protocol]),
        )
    else:
        engine = hlapi.SnmpEngine()
        # v2c only where the issue asks for it (legacy managers); v3 is the default.
        auth = hlapi.CommunityData(await secret(snmp.community_secret), mpModel=1)  # noqa: S508
    trap_oid, *objects = notification(enterprise, alert, device)
    assert isinstance(trap_oid.value, tuple)
    binds = [(hlapi.ObjectIdentity(_dotted(v.oid)), _pysnmp_value(rfc1902, v)) for v in objects]
    try:
        target = await hlapi.UdpTransportTarget.create((snmp.host, snmp.port))
        error, *_ = await hlapi.send_notification(
            engine,
            auth,
            target,
            hlapi.ContextData(),
            "trap",
            hlapi.NotificationType(hlapi.ObjectIdentity(_dotted(trap_oid.value))).add_varbinds(
                *binds
            ),
        )
    finally:
        engine.close_dispatcher()
    if error:
        raise OSError(str(error))


def _dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def _pysnmp_value(rfc1902: Any, v: VarBind) -> object:
    match v.type:
        case SmiType.INTEGER:
            return rfc1902.Integer32(v.value)
        case SmiType.GAUGE32:
            return rfc1902.Unsigned32(v.value)
        case _:
            return rfc1902.OctetString(v.value)
