"""SIEM messages name the device, and a collector can require the device to present a
client certificate (issue 29): a real rsyslog with its OpenSSL driver in
x509/certvalid mode takes the daemon's records from a destination with the client
certificate and refuses a destination without it; every message carries the board's
model, the identity key's fingerprint (which `mfpsec keys identity` shows) and, with no
serial number on this board, that fingerprint as deviceExternalId. A client key others
could read, a half-configured pair or a plain-TCP destination with a certificate are
refused at start."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mfpsecd.audit.forwarder import make_forwarders
from mfpsecd.base.config.schema import AuditForwardSection, ForwardTransport
from mfpsecd.base.errors import ErrorCode, MfpsecError
from tests.support import daemon as ds
from tests.support import siem_parse
from tests.support.pki import make_pki
from tests.support.rsyslog import Rsyslog


@pytest.mark.sfr("FAU_STG_EXT.1", "FCS_CKM.2", "FTP_ITC.1")
@pytest.mark.spec("L-3", "L-5")
def test_a_collector_that_requires_a_client_certificate_gets_the_device_named(
    short_tmp: Path,
) -> None:
    pki = make_pki(short_tmp / "pki", client="mfp-01.fleet.example")
    assert pki.client_cert is not None and pki.client_key is not None
    receiver = Rsyslog(short_tmp / "rsyslog", pki, auth_mode="x509/certvalid")
    receiver.start()
    common = {"host": "localhost", "port": receiver.port, "ca_file": str(pki.ca)}
    forward = [
        {
            "name": "mutual",
            **common,
            "client_cert_file": str(pki.client_cert),
            "client_key_file": str(pki.client_key),
        },
        {"name": "anonymous", **common, "format": "leef"},
    ]
    try:
        with ds.running(short_tmp / "d", tpm="none", config={"audit": {"forward": forward}}) as d:
            identity = json.loads(ds.mfpsec(d.socket_path, "keys", "identity", "--json").stdout)
            deadline = time.monotonic() + 30
            while not receiver.lines():
                assert time.monotonic() < deadline, "nothing arrived over mutual TLS"
                time.sleep(0.1)

            def status() -> dict[str, dict[str, object]]:
                out = ds.mfpsec(d.socket_path, "audit", "forward", "status", "--json").stdout
                return {x["name"]: x for x in json.loads(out)}

            # Without a certificate the collector refuses the session; with TLS 1.3 it
            # does so just after the handshake, and the forwarder waits for that verdict
            # before it sends: nothing counts as forwarded, and the status says why.
            deadline = time.monotonic() + 30
            while not (anonymous := status()["anonymous"])["last_error"]:
                assert time.monotonic() < deadline, anonymous
                time.sleep(0.2)
            assert "CERTIFICATE_REQUIRED" in str(anonymous["last_error"]).upper().replace(
                " ", "_"
            ), anonymous
            assert anonymous["cursor"] == 0 and not anonymous["connected"]
            assert status()["mutual"]["connected"]
    finally:
        receiver.stop()
    for line in receiver.lines():
        msg = siem_parse.syslog(line.encode())["msg"]
        assert msg.startswith("CEF:")  # only the mutual destination's format
        _, f = siem_parse.cef(msg)
        assert f["deviceExternalId"] == identity["fingerprint"]
        assert (f["cs4Label"], f["cs4"]) == ("deviceIdentity", identity["fingerprint"])
        assert (f["cs3Label"], f["cs3"]) == ("deviceModel", "test board")


def _dest(tmp: Path, **kw: object) -> AuditForwardSection:
    return AuditForwardSection(name="siem", host="localhost", ca_file=str(tmp / "ca.pem"), **kw)  # type: ignore[arg-type]


def test_a_client_certificate_that_cannot_serve_is_refused_at_start(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, client="mfp-01")
    cert, key = str(pki.client_cert), str(pki.client_key)
    other = make_pki(tmp_path / "other", client="someone-else")
    cases = {
        "go together": _dest(tmp_path, client_cert_file=cert),
        "transport tls": _dest(
            tmp_path, client_cert_file=cert, client_key_file=key, transport=ForwardTransport.TCP
        ),
        "cannot load": _dest(
            tmp_path, client_cert_file=cert, client_key_file=str(other.client_key)
        ),
    }
    assert pki.client_key is not None
    world = tmp_path / "world.key"
    world.write_bytes(pki.client_key.read_bytes())
    world.chmod(0o644)
    cases["readable by others"] = _dest(tmp_path, client_cert_file=cert, client_key_file=str(world))
    for why, dest in cases.items():
        with pytest.raises(MfpsecError) as err:
            make_forwarders([dest], None, None, None, None, hostname="h", version="1")  # type: ignore[arg-type]
        assert err.value.code is ErrorCode.CONFIG_INVALID and why in str(err.value), why
