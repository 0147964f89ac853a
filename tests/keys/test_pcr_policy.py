"""core.pcr_policy without a TPM: what a binding accepts, and the encodings the TPM
compares (the digests themselves are checked against a real TPM's trial session in
tests/keys/test_tpm2_swtpm.py)."""

from __future__ import annotations

import hashlib

import pytest

from mfpsecd.keys.model.pcr_policy import PcrBinding, extended

A, B = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()


@pytest.mark.parametrize(
    ("pcrs", "values"),
    [
        ((14, 7), (A, B)),  # not ascending
        ((14, 14), (A, A)),  # twice
        ((24,), (A,)),  # no such PCR
        ((-1,), (A,)),
        ((14,), ()),  # a value missing
        ((14,), (A[:31],)),  # not SHA-256
    ],
)
def test_malformed_bindings_are_refused(pcrs: tuple[int, ...], values: tuple[bytes, ...]) -> None:
    with pytest.raises(ValueError):
        PcrBinding(pcrs, values)


def test_selection_bitmap_and_replacing() -> None:
    binding = PcrBinding.of({14: A, 7: B})
    assert binding.pcrs == (7, 14) and binding.values == (B, A)
    # TPML_PCR_SELECTION: count 1, SHA-256, 3 bytes of bitmap with bits 7 and 14.
    assert binding.selection == bytes.fromhex("00000001000b03804000")
    assert PcrBinding((), ()).selection == bytes(4)
    moved = binding.replacing(14, B)
    assert moved == PcrBinding((7, 14), (B, B)) and moved.policy != binding.policy
    assert binding.describe() == f"PCR 7 = {B.hex()[:16]}…, PCR 14 = {A.hex()[:16]}…"
    # Commands-only and PCR-bound policies differ, and each branch names its command.
    assert len(set(binding.branches) | set(PcrBinding((), ()).branches)) == 4


def test_extended_is_the_tpm_extend() -> None:
    assert extended(bytes(32), A) == hashlib.sha256(bytes(32) + A).digest()
    with pytest.raises(ValueError):
        extended(bytes(20), A)
