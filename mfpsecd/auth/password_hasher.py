"""Argon2id password verifiers, computed off the event loop on a small pool of threads
(the KDF releases the GIL) with a bounded queue.

Argon2id is slow and memory-hard on purpose, so it is also the cheapest way to knock the
device over: the queue bound is what keeps a login flood from piling up work and memory.
A request that finds the queue full is refused at once (Throttled) instead of waiting.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from concurrent.futures import ThreadPoolExecutor

from mfpsecd.auth.model.password_record import SALT_BYTES, Entry
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.secret import SecretBytes
from mfpsecd.keys.model.passphrase import Cost
from mfpsecd.keys.ports import KeyCrypto

# Chosen for an embedded ARM-class controller (Cortex-A53/A55, 1.2-2 GHz, 1-4 GiB RAM):
# the OWASP floor for Argon2id (19 MiB, t=2, p=1): 19 ms on this development x86 core
# (bench/results/auth.md, the same as the reference libargon2), ~0.11-0.15 s on an A53
# (Argon2 is memory-bandwidth bound; A53-class cores run it 6-8x slower). The key
# backup's 64 MiB, t=3 (145 ms here) would make every panel login take over a second.
DEFAULT_COST = Cost(memory_kib=19 * 1024, iterations=2, lanes=1)


class PasswordHasher:
    def __init__(
        self, crypto: KeyCrypto, cost: Cost, workers: int = 2, max_queued: int = 8
    ) -> None:
        self._crypto = crypto
        self.cost = cost
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._limit = workers + max_queued
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def derive(self, password: SecretBytes, salt: bytes, cost: Cost) -> SecretBytes:
        """The 32-byte verifier; the caller wipes it. Throttled when the queue is full."""
        if self._in_flight >= self._limit:
            raise MfpsecError(ErrorCode.THROTTLED, retry_after_s=1.0)
        self._in_flight += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, self._crypto.passphrase_key, password, salt, cost
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The thread finishes anyway: wipe what it makes once nobody will read it.
            future.add_done_callback(_wipe_result)
            raise
        finally:
            self._in_flight -= 1

    async def new_verifier(self, password: SecretBytes) -> tuple[bytes, SecretBytes]:
        """(fresh random salt, verifier) at the current cost."""
        salt = os.urandom(SALT_BYTES)
        return salt, await self.derive(password, salt, self.cost)

    async def matches(self, password: SecretBytes, entry: Entry) -> bool:
        with await self.derive(password, entry.salt, entry.cost) as derived:
            return hmac.compare_digest(derived.view(), entry.verifier)

    async def burn(self, password: SecretBytes) -> None:
        """The work of a verification, for a user that does not exist: an unknown user
        name takes as long to refuse as a wrong password."""
        _, derived = await self.new_verifier(password)
        derived.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _wipe_result(future: asyncio.Future[SecretBytes]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
