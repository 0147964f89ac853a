"""A swtpm of the test's own (the same process manager the simulated board uses)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tpm2_pytss.constants import TPMA_OBJECT

from mfpsecd.keys.backends.swtpm import SwtpmProcess
from mfpsecd.keys.backends.tpm2 import WRAP_TEMPLATE, Tpm2Backend, duplication_policy
from mfpsecd.keys.model.pcr_policy import PcrBinding
from mfpsecd.keys.ports import TpmKey

requires_swtpm = pytest.mark.skipif(
    shutil.which("swtpm") is None, reason="swtpm is not installed (make setup installs it)"
)


class SwtpmHandle:
    """Runs a SwtpmProcess on its own event loop so synchronous tests can hold it."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self._loop = asyncio.new_event_loop()
        self._proc = SwtpmProcess(state)
        self.tcti = self._loop.run_until_complete(self._proc.start())

    def backend(self) -> Tpm2Backend:
        return Tpm2Backend(self.tcti, "swtpm")

    def stop(self) -> None:
        self._loop.run_until_complete(self._proc.stop())
        self._loop.close()


@contextlib.contextmanager
def swtpm(state: Path) -> Iterator[SwtpmHandle]:
    handle = SwtpmHandle(state)
    try:
        yield handle
    finally:
        handle.stop()


class LegacyTpm(Tpm2Backend):
    """Creates the wrapping key as schema 13 did: its empty auth value opens it."""

    async def create_wrapping_key(self, binding: PcrBinding) -> TpmKey:
        attrs = (
            TPMA_OBJECT.DECRYPT
            | TPMA_OBJECT.SENSITIVEDATAORIGIN
            | TPMA_OBJECT.USERWITHAUTH
            | TPMA_OBJECT.NODA
        )
        key = await self._call(lambda: self._create(WRAP_TEMPLATE, attrs, duplication_policy()))
        return TpmKey(key.public, key.private, binding)
