"""PKI card login (A-8) with SoftHSM2 tokens as the cards: success, wrong PIN, an expired
certificate, a certificate from an untrusted CA, and cards that cannot sign the
challenge (the key may not sign; a certificate copied onto a card without its key)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mfpsecd.audit.events import EventType
from mfpsecd.auth.backends.pkcs11_card import Pkcs11Card
from mfpsecd.base.access import Role
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from tests.support.auth_stack import ADMIN_PW, CLI, Stack, pw, seat, stack
from tests.support.fakeclock import FakeClock
from tests.support.softhsm import (
    PIN,
    make_ca,
    make_card,
    requires_softhsm,
    softhsm_env,  # noqa: F401 (the fixture)
)

pytestmark = [requires_softhsm, pytest.mark.usefixtures("softhsm_env")]


class Slot:
    """The reader: a CardReader for whichever SoftHSM token is "inserted"."""

    def __init__(self) -> None:
        self.card: Pkcs11Card | None = None

    def certificate(self) -> bytes:
        assert self.card is not None
        return self.card.certificate()

    def sign(self, pin: SecretBytes, data: bytes) -> bytes:
        assert self.card is not None
        return self.card.sign(pin, data)


def test_card_login_success_wrong_pin_expired_untrusted_and_unable_to_sign(tmp_path: Path) -> None:
    clock = FakeClock()
    now = clock.now()
    ca, rogue = make_ca("Device users CA", now), make_ca("Somebody else's CA", now)
    good = make_card("card-good", ca, now)
    expired = make_card("card-expired", ca, now, expired=True)
    untrusted = make_card("card-untrusted", rogue, now)
    no_sign = make_card("card-nosign", ca, now, can_sign=False)
    copied = make_card("card-copied", ca, now, matching_key=False)

    slot = Slot()
    cards = {c.label: c for c in (good, expired, untrusted, no_sign, copied)}

    async def login(s: Stack, card_label: str, pin: str = PIN) -> ErrorCode | str:
        slot.card = cards[card_label].reader()  # this card is inserted now
        st = seat()
        try:
            await s.auth.login_card(pw(pin), st, CLI)
        except MfpsecError as exc:
            return exc.code
        assert st.session is not None
        return st.session.user

    async def go() -> None:
        async with stack(tmp_path, clock, card=slot, anchors=(ca.cert,)) as s:
            await s.auth.accounts.initialize("admin", pw(ADMIN_PW))
            for name, card in (("carol", good), ("erin", no_sign), ("fred", copied)):
                await s.auth.accounts.add_user(
                    name, Role.SERVICE, pw(f"Service-pass-{len(name)}x2026"), temporary=False
                )
                await s.auth.bind_card(name, card.pem)
            # Binding checks the certificate too.
            for bad in (expired, untrusted):
                with pytest.raises(MfpsecError) as refused:
                    await s.auth.bind_card("carol", bad.pem)
                assert refused.value.code is ErrorCode.CERTIFICATE_REJECTED

            assert await login(s, "card-good") == "carol"
            assert await login(s, "card-good", "000000") is ErrorCode.AUTHENTICATION_FAILED
            assert await login(s, "card-expired") is ErrorCode.CERTIFICATE_REJECTED
            assert await login(s, "card-untrusted") is ErrorCode.CERTIFICATE_REJECTED
            assert await login(s, "card-nosign") is ErrorCode.CARD_UNUSABLE
            assert await login(s, "card-copied") is ErrorCode.CARD_UNUSABLE
            # Wrong PINs count towards carol's lockout like wrong passwords.
            assert await login(s, "card-good", "111111") is ErrorCode.AUTHENTICATION_FAILED
            assert await login(s, "card-good", "222222") is ErrorCode.AUTHENTICATION_FAILED
            assert await login(s, "card-good") is ErrorCode.ACCOUNT_LOCKED
            reasons = {str(e.get("reason")) for e in await s.events(EventType.AUTH_LOGIN)}
            assert {
                "wrong PIN",
                "expired",
                "challenge not signed by the certificate's key",
            } <= reasons
            assert any("not issued by a trusted CA" in r for r in reasons)
            [carol] = [u for u in await s.auth.accounts.list_users() if u.name == "carol"]
            assert carol.card_fingerprint and carol.failures == 3

    asyncio.run(go())
