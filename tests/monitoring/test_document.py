"""The monitoring document is held to exactly the configuration file's rules: a key out of
range or of the wrong kind is refused by its path, names are unique, and a document
converts to the file's sections and back unchanged."""

from __future__ import annotations

import msgspec
import pytest

from mfpsecd.base.config.schema import Config
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.monitoring import api
from mfpsecd.monitoring.model.document import (
    applied,
    as_document,
    as_sections,
    decode,
    encode,
    of_config,
    secret_names,
)

DOC = api.Document(
    forward=[api.SiemDestination("soc", "siem.example.net", ca_file="/etc/ca.pem")],
    notify=api.Notify(
        mail=api.MailChannel(
            "mail.example.net", "mfp@example.net", ["sec@example.net"], password_secret="smtp"
        ),
        snmp=api.SnmpTrapChannel(
            "nms.example.net",
            user="mfp",
            engine_id="80001f8880c0ffee01",
            auth_secret="snmp-auth",
            priv_secret="snmp-priv",
        ),
        rules=[api.AlertRule("password attack", ["auth.login"], True, 5)],
    ),
    snmp=api.Subagent(agentx_socket="/var/agentx/master"),
)


def test_a_document_round_trips_through_the_configuration_sections() -> None:
    sections = as_sections(DOC)
    assert as_document(sections) == DOC
    assert decode(encode(sections)) == sections
    cfg = applied(Config(), sections)
    assert cfg.audit.forward[0].host == "siem.example.net"
    assert cfg.snmp.agentx_socket == "/var/agentx/master"
    assert of_config(cfg) == sections
    assert secret_names(sections) == ["smtp", "snmp-auth", "snmp-priv"]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"forward": [{"name": "soc", "host": "h", "port": 70000}]}, "forward[0].port"),
        ({"forward": [{"name": "bad name!", "host": "h"}]}, "forward[0].name"),
        ({"notify": {"snmp": {"host": "h", "engine_id": "zz"}}}, "notify.snmp.engine_id"),
        (
            {"notify": {"rules": [{"name": "r", "events": ["x"], "by": "nobody"}]}},
            "notify.rules[0].by",
        ),
        ({"notify": {"expire_hours": 0.5}}, "notify.expire_hours"),
        ({"snmp": {"agentx_socket": "relative/path"}}, "snmp.agentx_socket"),
        ({"snmp": {"enterprise": 0}}, "snmp.enterprise"),
    ],
)
def test_a_key_the_file_would_refuse_is_refused_by_its_path(change: dict, key: str) -> None:  # type: ignore[type-arg]
    document = msgspec.convert(change, api.Document)
    with pytest.raises(MfpsecError) as err:
        as_sections(document)
    assert err.value.code is ErrorCode.CONFIG_INVALID
    assert err.value.params["key"] == key


def test_names_are_unique() -> None:
    twice = api.Document(forward=[api.SiemDestination("soc", "a"), api.SiemDestination("soc", "b")])
    with pytest.raises(MfpsecError, match="named twice"):
        as_sections(twice)
