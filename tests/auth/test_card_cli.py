"""PKI card login through the daemon and the CLI, with a SoftHSM2 token as the card."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.support import daemon as ds
from tests.support.softhsm import (
    MODULE,
    PIN,
    make_ca,
    make_card,
    requires_softhsm,
    softhsm_env,  # noqa: F401 (the fixture)
)

pytestmark = requires_softhsm


def test_bind_a_card_and_log_in_with_it(short_tmp: Path, softhsm_env: Path) -> None:  # noqa: F811
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("Device users CA", now)
    card = make_card("cli-card", ca, now)
    (short_tmp / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (short_tmp / "card.pem").write_text(card.pem)
    config = {
        "auth": {
            "argon2_memory_kib": 8192,
            "argon2_iterations": 1,
            "card": {
                "module": MODULE,
                "token_label": "cli-card",
                "trust_anchors": [str(short_tmp / "ca.pem")],
            },
        }
    }
    with ds.running(
        short_tmp / "d",
        config=config,
        tpm="none",
        env={"SOFTHSM2_CONF": str(softhsm_env), "XDG_RUNTIME_DIR": str(short_tmp)},
    ) as d:

        def cli(*args: str, stdin: str | None = None) -> str:
            r = ds.mfpsec(
                d.socket_path, *args, stdin=stdin, env={"XDG_RUNTIME_DIR": str(short_tmp)}
            )
            assert r.returncode == 0, (args, r.stderr)
            return r.stdout

        cli("users", "init", "admin", "--password-file", "-", stdin="Adm1n-password-2026")
        cli("login", "-u", "admin", "--password-file", "-", stdin="Adm1n-password-2026")
        cli(
            "users",
            "add",
            "carol",
            "--role",
            "service",
            "--password-file",
            "-",
            stdin="Service-pass-2026",
        )
        assert "bound to carol" in cli(
            "users", "card", "carol", "--cert", str(short_tmp / "card.pem")
        )
        out = cli("login", "--card", "--password-file", "-", stdin=PIN)
        assert "logged in as carol (service)" in out
        who = json.loads(cli("whoami", "--json"))
        assert (who["user"], who["role"]) == ("carol", "service")
        r = ds.mfpsec(
            d.socket_path,
            "login",
            "--card",
            "--password-file",
            "-",
            stdin="999999",
            env={"XDG_RUNTIME_DIR": str(short_tmp)},
        )
        assert r.returncode == 77 and "AuthenticationFailed" in r.stderr
        events = json.loads(cli("audit", "show", "--type", "auth.login", "--json"))
        methods = [
            (e["outcome"], e["details"].get("method"), e["details"].get("reason")) for e in events
        ]
        assert ("success", "card", None) in methods
        assert ("failure", "card", "wrong PIN") in methods
